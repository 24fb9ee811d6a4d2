"""The overhead of each agent per decision, with an instant evaluator, as a ratio to random search.

Every agent runs the same number of episodes on the ``"seed"`` space (1 to 31 decisions per
episode, 10 actions) and the ``"nb201"`` space (6 decisions of 5 choices), on a ``NASEnv``
whose evaluator is a hash of the architecture string (microseconds), so the time measured is the
agent's: acting, learning (REINFORCE's and SB3's updates included) and the env's bookkeeping,
which random search pays too. Each agent is timed over several rounds, a fresh agent and env
each, and the fastest round counts, which filters out the noise of a shared machine.

Run ``python benchmarks/bench_agents.py [--episodes N] [--rounds R] [--agents a,b,...]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import torch
from machine import cpu_name  # benchmarks/machine.py

from agents import list_agents, make_agent
from nas_gym.envs import NASEnv


def hash_accuracy(arch: str) -> dict[str, float]:
    """An instant, deterministic evaluator."""
    return {"accuracy": int.from_bytes(hashlib.sha256(arch.encode()).digest()[:4], "little") / 2**32}


def seconds_per_decision(agent: str, space: str, episodes: int, seed: int) -> float:
    """Wall-clock seconds of one search divided by its number of decisions (env steps)."""
    env = NASEnv(space, evaluator=hash_accuracy)
    search = make_agent(agent, seed=seed)
    start = time.perf_counter()
    result = search.search(env, episodes)
    seconds = time.perf_counter() - start
    return seconds / sum(record["steps"] for record in result.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=300, help="episodes per search")
    parser.add_argument(
        "--rounds", type=int, default=3, help="searches per agent and space; the fastest counts"
    )
    parser.add_argument("--agents", default=",".join(list_agents()), help="comma-separated agent names")
    parser.add_argument("--spaces", default="seed,nb201", help="comma-separated space presets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.episodes < 1 or args.rounds < 1:
        parser.error(f"expected --episodes and --rounds >= 1, got {args.episodes} and {args.rounds}")
    agents = [name.strip() for name in args.agents.split(",") if name.strip()]
    unknown = sorted(set(agents) - set(list_agents()))
    if unknown:
        parser.error(f"expected agents among {list(list_agents())}, got {unknown}")
    if "random" not in agents:
        agents.insert(0, "random")

    print(f"CPU: {cpu_name()} ({torch.get_num_threads()} torch threads), torch {torch.__version__}")
    print(f"{args.episodes} episodes per search, fastest of {args.rounds} rounds\n")
    for space in args.spaces.split(","):
        best = {
            agent: min(
                seconds_per_decision(agent, space, args.episodes, args.seed) for _ in range(args.rounds)
            )
            for agent in agents
        }
        print(f"space {space!r}")
        print(f"  {'agent':<14}{'ms/decision':>12}{'x random':>10}")
        for agent, seconds in best.items():
            print(f"  {agent:<14}{seconds * 1e3:>12.3f}{seconds / best['random']:>10.1f}")
        print()


if __name__ == "__main__":
    main()
