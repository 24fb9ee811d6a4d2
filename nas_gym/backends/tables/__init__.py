"""Tabulated benchmarks: one reader for every table, one module per benchmark."""
