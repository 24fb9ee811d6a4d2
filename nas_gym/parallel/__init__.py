"""Where evaluations (and whole search runs) run: executors with one ``map``, and their specification."""
