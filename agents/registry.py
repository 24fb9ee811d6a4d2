"""Agents by name: :func:`make_agent`, :func:`list_agents`, :func:`register_agent`.

Built-in agents are registered by entry point (``"module:Class"``) and imported on first use,
so ``import agents`` stays light: PyTorch and Stable-Baselines3 load only when an agent that
needs them is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.base import Agent
from nas_gym.core.errors import did_you_mean

AgentFactory = Callable[..., Agent]
"""Anything that takes ``seed=`` and keyword arguments and returns an :class:`~agents.Agent`."""


@dataclass(frozen=True)
class AgentSpec:
    """A registered agent."""

    entry_point: str | AgentFactory
    """``"module:attribute"`` (imported on first use) or the factory itself."""
    description: str
    """One line, shown by ``nas-gym agents``."""

    def load(self) -> AgentFactory:
        if callable(self.entry_point):
            return self.entry_point
        module, _, attribute = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), attribute)


AGENTS: dict[str, AgentSpec] = {}
"""Registered agents by name, in registration order."""


def register_agent(
    name: str, entry_point: str | AgentFactory, description: str, *, overwrite: bool = False
) -> None:
    """Make ``make_agent(name, ...)`` build agents with ``entry_point``.

    Args:
        name: the agent's name (``nas-gym search --agent NAME``).
        entry_point: ``"module:attribute"`` or a callable taking ``seed=`` and keyword arguments.
        description: one line.
        overwrite: replace an agent already registered under ``name`` (else that raises).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected a non-empty agent name, got {name!r}")
    if not (callable(entry_point) or (isinstance(entry_point, str) and ":" in entry_point)):
        raise ValueError(f"expected entry_point as 'module:attribute' or a callable, got {entry_point!r}")
    if name in AGENTS and not overwrite:
        raise ValueError(
            f"expected a new agent name, got {name!r}, which is registered (pass overwrite=True)"
        )
    AGENTS[name] = AgentSpec(entry_point, str(description))


def make_agent(name: str, seed: int | None = None, **kwargs: Any) -> Agent:
    """The agent registered as ``name``, seeded with ``seed``; ``kwargs`` go to its constructor
    (for the Stable-Baselines3 agents, to the algorithm, e.g. ``learning_rate=1e-3``).

    Example:
        >>> from agents import make_agent
        >>> make_agent("evolution", seed=0, population_size=10)
        EvolutionAgent(seed=0, population_size=10, sample_size=5)
    """
    if not isinstance(name, str) or name not in AGENTS:
        raise ValueError(
            f"expected an agent in {list(AGENTS)}, got {name!r}{did_you_mean(str(name), AGENTS)}"
        )
    return AGENTS[name].load()(seed=seed, **kwargs)


def list_agents() -> dict[str, str]:
    """Registered agent names mapped to their one-line descriptions, in registration order."""
    return {name: spec.description for name, spec in AGENTS.items()}


for _name, _entry_point, _description in (
    ("random", "agents.random_search:RandomAgent", "uniform random choice of every decision (baseline)"),
    ("evolution", "agents.evolution:EvolutionAgent", "regularized (aging) evolution, Real et al. 2019"),
    (
        "reinforce",
        "agents.reinforce:ReinforceAgent",
        "LSTM controller trained with REINFORCE, Zoph & Le 2017",
    ),
    ("ppo", "agents.sb3:PPOAgent", "Stable-Baselines3 PPO on the unmasked env (MlpPolicy)"),
    ("maskable-ppo", "agents.sb3:MaskablePPOAgent", "sb3-contrib MaskablePPO, never takes an invalid action"),
    ("a2c", "agents.sb3:A2CAgent", "Stable-Baselines3 A2C (MlpPolicy)"),
    ("dqn", "agents.sb3:DQNAgent", "Stable-Baselines3 DQN (MlpPolicy, epsilon-greedy)"),
    (
        "hyperband",
        "agents.hyperband:HyperbandAgent",
        "Hyperband: successive-halving brackets over the env's fidelities, Li et al. 2018",
    ),
    (
        "mo-evolution",
        "agents.mo_evolution:MOEvolutionAgent",
        "aging evolution on vector rewards: Pareto rank and crowding distance (objectives=)",
    ),
    (
        "mo-reinforce",
        "agents.mo_reinforce:MOReinforceAgent",
        "REINFORCE controller on a random Chebyshev scalarisation per episode (objectives=)",
    ),
):
    register_agent(_name, _entry_point, _description)
