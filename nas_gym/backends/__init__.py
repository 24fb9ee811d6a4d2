"""Reward backends: what turns an architecture into metrics. ``cifar`` trains the network on CIFAR-10;
``tables`` looks it up in a benchmark table; ``download`` fetches the data both need."""
