"""Tests of nas_gym.backends."""
