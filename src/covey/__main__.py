"""`python -m covey`: the same command line as `covey`."""

from covey.entry import main

main()
