"""Plain Stable-Baselines3 on a nas-gym env: PPO searching the ``"seed"`` space of
``NASCifar-v0`` (every episode trains the sampled network on CIFAR-10), no nas-gym agent code.

The env is an ordinary Gymnasium env: ``MultiDiscrete`` observations (SB3 one-hot encodes them
for ``MlpPolicy``), ``Discrete`` actions, reward 0 until the last decision, then the validation
accuracy. The only NAS-specific settings are those of a terminal reward and a short run:
``gamma=1`` (nothing to discount), ``gae_lambda=1`` (Monte-Carlo advantages) and rollouts of a
handful of episodes rather than 2,048 steps. A callback reads the terminal ``infos``, prints
every architecture and stops after ``--episodes`` episodes.

Run: ``NAS_GYM_DATA=../shared/data python examples/sb3_ppo.py --episodes 20``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import nas_gym  # noqa: F401  (registers NASCifar-v0)


class BestArchitecture(BaseCallback):
    """Prints each finished episode and the best so far; stops training after ``episodes``."""

    def __init__(self, episodes: int):
        super().__init__()
        self.episodes = episodes
        self.finished = 0
        self.best: dict[str, Any] | None = None

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if not done:
                continue
            self.finished += 1
            if self.best is None or info["accuracy"] > self.best["accuracy"]:
                self.best = {"arch": info["arch"], "accuracy": info["accuracy"]}
            print(f"episode {self.finished:>3}  accuracy {info['accuracy']:.3f}  {info['arch']}", flush=True)
        return self.finished < self.episodes


def main(argv: Sequence[str] | None = None, **env_kwargs: Any) -> dict[str, Any]:
    """Run the search and return the best ``{"arch", "accuracy"}``; ``env_kwargs`` go to
    ``gym.make`` (tests pass an instant ``evaluator``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="architectures to train (default 20)")
    parser.add_argument("--budget", default="smoke", help="smoke | proxy | full (default smoke)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"expected --episodes >= 1, got {args.episodes}")

    env = gym.make("NASCifar-v0", **{"budget": args.budget, **env_kwargs})
    longest = env.unwrapped.space.max_decisions  # 31 decisions: depth, then 3 per layer
    model = PPO(
        "MlpPolicy",
        env,
        gamma=1.0,
        gae_lambda=1.0,
        n_steps=4 * longest,  # a rollout of 4 to 30 episodes, depending on their depths
        batch_size=longest,
        learning_rate=1e-3,
        ent_coef=0.01,
        device="cpu",  # the policy is tiny; the GPU, if any, is for the env's training
        seed=args.seed,
    )
    callback = BestArchitecture(args.episodes)
    # Enough steps for the episodes; the callback stops at the last one.
    model.learn(total_timesteps=args.episodes * longest, callback=callback)
    env.close()
    best = callback.best
    assert best is not None  # learn() ran at least one episode
    print(f"best of {callback.finished}: {best['arch']}  validation accuracy {best['accuracy']:.3f}")
    return best


if __name__ == "__main__":
    main()
