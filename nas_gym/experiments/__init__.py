"""Search runs on disk, comparisons of agents, plots and the ``nas-gym`` command: the only layer that
imports ``agents``."""
