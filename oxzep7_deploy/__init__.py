"""oxzep7-deploy: move a fleet of servers to a new Python, one release at a time."""

__version__ = "0.1.0"
