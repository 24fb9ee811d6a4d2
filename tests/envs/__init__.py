"""Tests of nas_gym.envs."""
