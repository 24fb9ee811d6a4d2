"""The agent zoo of nas-gym: search strategies that drive a nas-gym env.

>>> from agents import make_agent, list_agents
>>> sorted(list_agents())
['a2c', 'dqn', 'evolution', 'maskable-ppo', 'ppo', 'random', 'reinforce']

``make_agent(name, seed=...)`` builds one; ``agent.search(env, episodes)`` returns a
:class:`SearchResult`. A custom agent subclasses :class:`Agent` and implements ``act``.
The classes that need PyTorch or Stable-Baselines3 (``ReinforceAgent``, ``PPOAgent``, ...)
are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.base import Agent
from agents.evolution import EvolutionAgent
from agents.loop import SearchRecorder
from agents.random_search import RandomAgent
from agents.registry import AGENTS, list_agents, make_agent, register_agent
from agents.results import EpisodeRecord, SearchCallback, SearchResult, best_record, leaders

_LAZY = {
    "ReinforceAgent": "agents.reinforce",
    "ReinforceConfig": "agents.reinforce",
    "SB3Agent": "agents.sb3",
    "PPOAgent": "agents.sb3",
    "MaskablePPOAgent": "agents.sb3",
    "A2CAgent": "agents.sb3",
    "DQNAgent": "agents.sb3",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


__all__ = [
    "AGENTS",
    "A2CAgent",
    "Agent",
    "DQNAgent",
    "EpisodeRecord",
    "EvolutionAgent",
    "MaskablePPOAgent",
    "PPOAgent",
    "RandomAgent",
    "ReinforceAgent",
    "ReinforceConfig",
    "SB3Agent",
    "SearchCallback",
    "SearchRecorder",
    "SearchResult",
    "best_record",
    "leaders",
    "list_agents",
    "make_agent",
    "register_agent",
]
