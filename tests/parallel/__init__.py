"""Tests of nas_gym.parallel."""
