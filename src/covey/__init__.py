"""covey: turn spare devices into one frugal assistant."""

__version__ = "0.1.0"

__all__ = ["__version__"]
