"""The cost of one ``NASBench201-v0`` step against one ``CartPole-v1`` step.

Both envs are built with ``gym.make`` (so both carry the same standard wrappers) and driven with
pre-drawn random actions, resetting when an episode ends; resets are timed with the steps. The
two loops alternate over several rounds and the fastest round of each counts, which filters out
the noise of a shared machine. The NAS-Bench-201 loop starts with a cold in-process cache, so it
includes table lookups (up to 15,625 distinct cells) and cache hits in the proportion a random
search meets them.

Run ``NAS_GYM_DATA=../shared/data python benchmarks/bench_env_step.py [--steps N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import nas_gym  # noqa: F401  (registers the ids)


def time_steps(env: gym.Env, actions: np.ndarray, seed: int) -> float:
    """Seconds per step of ``env`` over ``actions`` (resets included, the first one excluded)."""
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions.tolist():
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - start) / len(actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000, help="steps per env and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"expected --steps and --rounds >= 1, got {args.steps} and {args.rounds}")

    rng = np.random.default_rng(args.seed)
    load_start = time.perf_counter()
    nb201 = gym.make("NASBench201-v0")
    load_seconds = time.perf_counter() - load_start
    cartpole = gym.make("CartPole-v1")
    envs = {"CartPole-v1": cartpole, "NASBench201-v0": nb201}
    best = dict.fromkeys(envs, float("inf"))
    for _ in range(args.rounds):
        for name, env in envs.items():
            # Fresh env each round for NAS-Bench-201, so every round starts with a cold cache.
            if name == "NASBench201-v0":
                env.close()
                env = envs[name] = gym.make("NASBench201-v0")
            actions = rng.integers(env.action_space.n, size=args.steps)
            best[name] = min(best[name], time_steps(env, actions, args.seed))
    for env in envs.values():
        env.close()

    print(f"NASBench201-v0 first construction (reads the table): {load_seconds:.3f} s")
    for name, seconds in best.items():
        print(f"{name:>16}: {seconds * 1e6:7.2f} us/step (best of {args.rounds} x {args.steps:,} steps)")
    print(f"ratio NASBench201-v0 / CartPole-v1: {best['NASBench201-v0'] / best['CartPole-v1']:.2f}")


if __name__ == "__main__":
    main()
