"""A custom agent in a few lines: epsilon-greedy over the best architecture found so far.

Run: python examples/custom_agent.py  (instant: a stand-in evaluator replaces training)
"""

import hashlib

import numpy as np

from agents import Agent
from nas_gym.envs import NASEnv


class EpsilonGreedy(Agent):
    """Replays the best architecture so far, each decision changed with probability epsilon."""

    def __init__(self, seed=None, epsilon=0.2):
        super().__init__(seed)
        self.epsilon, self.best, self.best_reward, self.taken = epsilon, [], -np.inf, []

    def act(self, obs, info):
        valid = np.flatnonzero(info["action_mask"])
        step = len(self.taken)
        explore = step >= len(self.best) or self.rng.random() < self.epsilon
        self.taken.append(int(self.rng.choice(valid)) if explore else self.best[step])
        return self.taken[-1]

    def observe(self, obs, reward, terminated, truncated, info):
        if terminated and reward > self.best_reward:
            self.best, self.best_reward = list(self.taken), reward
        if terminated or truncated:
            self.taken = []


def stand_in_accuracy(arch):  # replace with real training, e.g. gym.make("NASCifar-v0")
    return {"accuracy": int.from_bytes(hashlib.sha256(arch.encode()).digest()[:4], "little") / 2**32}


result = EpsilonGreedy(seed=0).search(NASEnv("nb201", evaluator=stand_in_accuracy), episodes=200)
print(f"best of {len(result)}: {result.best['arch']}  reward {result.best['reward']:.4f}")
