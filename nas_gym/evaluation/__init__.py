"""Everything that turns an architecture into metrics: the CIFAR-10 trainer (``trainer``), the
benchmark tables (``tables``), the persistent store (``store``), the cache-and-failure path behind
every env (``runner``) and the executors that spread evaluations (``executors``).

Submodules are imported on use, so ``import nas_gym`` does not load torch or the tables.
"""
