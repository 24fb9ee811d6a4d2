"""Tests of nas_gym.experiments."""
