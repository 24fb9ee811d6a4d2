"""The evaluation path between an env and its backend: the runner (in-process cache, failure
statuses), the persistent store, the metrics dict, the objectives and the Pareto mathematics."""
