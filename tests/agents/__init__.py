"""Tests of the agent zoo."""
