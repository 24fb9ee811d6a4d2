"""Tests of nas_gym.evaluation."""
