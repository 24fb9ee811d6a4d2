"""REINFORCE (the LSTM controller of Zoph & Le, 2017) searching the ``"seed"`` space of
``NASCifar-v0``: every episode trains the sampled network on CIFAR-10.

The default ``smoke`` budget trains each network for one epoch on 2,000 images (seconds to a
minute on a CPU, deep networks the longest): a sanity signal, not a ranking. Use
``--budget proxy`` on a GPU for a search whose ranking means something.

Run: ``NAS_GYM_DATA=../shared/data python examples/reinforce_cifar.py --episodes 10``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

import nas_gym  # noqa: F401  (registers NASCifar-v0)
from agents import SearchResult, make_agent


def main(argv: Sequence[str] | None = None, **env_kwargs: Any) -> SearchResult:
    """Run the search; ``env_kwargs`` go to ``gym.make`` (tests pass an instant ``evaluator``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10, help="architectures to train (default 10)")
    parser.add_argument("--budget", default="smoke", help="smoke | proxy | full (default smoke)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--store", default=None, help="SQLite file of finished evaluations, reused across runs"
    )
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"expected --episodes >= 1, got {args.episodes}")

    env_kwargs = {"budget": args.budget, "device": args.device, "store": args.store, **env_kwargs}
    env = gym.make("NASCifar-v0", **env_kwargs)
    # The controller's defaults suit a few hundred episodes; over a handful it stays near uniform.
    agent = make_agent("reinforce", seed=args.seed)

    def progress(record: dict[str, Any]) -> None:
        print(
            f"episode {record['episode']:>3}  accuracy {record['accuracy']:.3f}  "
            f"{record['train_seconds']:6.1f} s  {record['arch']}",
            flush=True,
        )

    result = agent.search(env, args.episodes, callback=progress)
    env.close()
    best = result.best
    print(f"best of {len(result)}: {best['arch']}  validation accuracy {best['accuracy']:.3f}")
    return result


if __name__ == "__main__":
    main()
