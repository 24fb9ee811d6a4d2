"""A search in its own process, for kill-and-resume tests.

Registers ``CountingNAS-v0``: the NAS-Bench-201 space with an evaluator that takes a little time
and appends every real evaluation to a log file, so a test can count training calls across kills.

Usage: python counting_search.py OUT_DIR CALLS_LOG AGENT EPISODES [--resume]
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import gymnasium as gym


class CountingEvaluator:
    def __init__(self, log: str, seconds: float = 0.03):
        self.log = log
        self.seconds = seconds
        self.fingerprint = "counting-evaluator/v1"

    def __call__(self, arch: str) -> dict:
        time.sleep(self.seconds)
        with open(self.log, "a") as f:
            f.write(arch + "\n")
            f.flush()
            os.fsync(f.fileno())
        digest = hashlib.sha256(arch.encode()).digest()
        return {"accuracy": int.from_bytes(digest[:4], "little") / 2**32, "train_seconds": 1.0}


def make_counting_env(log: str, store=None, render_mode=None, eval_seed: int = 0):
    from nas_gym.envs import NASEnv

    return NASEnv("nb201", evaluator=CountingEvaluator(log), store=store, render_mode=render_mode)


def main() -> None:
    out, log, agent, episodes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    resume = "--resume" in sys.argv
    gym.register("CountingNAS-v0", entry_point=make_counting_env, kwargs={"log": log})
    from nas_gym.experiments.config import SearchConfig
    from nas_gym.experiments.runs import run_search

    config = SearchConfig(env="CountingNAS-v0", agent=agent, episodes=episodes, seed=0)
    run_search(config, out, resume=resume)
    print("finished")


if __name__ == "__main__":
    main()
