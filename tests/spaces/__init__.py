"""Tests of nas_gym.spaces."""
