"""The bottom layer, used by every other: the data and cache folders, error text, input checks and the
machine's devices and threads. It imports nothing else of nas-gym."""
