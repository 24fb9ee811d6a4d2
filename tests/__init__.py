"""The nas-gym test suite."""
