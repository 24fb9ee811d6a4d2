"""Tests of nas_gym.core."""
