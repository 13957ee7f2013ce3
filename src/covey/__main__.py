"""`python -m covey`: the same command line as `covey`."""

from covey.cli import main

main()
