"""The CIFAR-10 backend of ``NASCifar-v0``: the data, the budgets, the training routine and the trainer."""
