"""What each ``nas-gym`` subcommand does, given its parsed arguments (:mod:`nas_gym.experiments.cli`
parses them and turns errors into one line). Each command checks its input before its real work
starts (:data:`STARTED`), so that bad input fails before anything is written."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from nas_gym.core.errors import did_you_mean

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


STARTED: list[bool] = []
"""Set once a command's real work starts: before that, a ValueError or TypeError is bad input
(one line, exit 2); after it, a programming error (its traceback is kept)."""


def _check_env_id(env_id: str) -> str:
    from nas_gym.registration import ENVS

    if env_id not in ENVS:
        raise UsageError(
            f"unknown env {env_id!r}: expected one of {', '.join(ENVS)}{did_you_mean(env_id, ENVS)}"
        )
    return env_id


def _check_agent(name: str) -> str:
    from agents import list_agents

    names = list(list_agents())
    if name not in names:
        raise UsageError(
            f"unknown agent {name!r}: expected one of {', '.join(names)}{did_you_mean(name, names)}"
        )
    return name


_ENV_OPTIONS = ("budget", "device", "space", "reward", "dataset", "objectives")
"""Command-line options that are keyword arguments of the env, where the env takes them."""


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from nas_gym.registration import env_accepts

    kwargs: dict[str, Any] = {}
    for option in _ENV_OPTIONS:
        value = getattr(args, option, None)
        if value is None:
            continue
        if not env_accepts(args.env, option):
            raise UsageError(f"--{option} is not an option of {args.env}")
        kwargs[option] = list(value) if isinstance(value, tuple) else value
    return kwargs


def _executor(args: argparse.Namespace):
    from nas_gym.core.devices import resolve_device
    from nas_gym.parallel.spec import ExecutorSpec

    if getattr(args, "device", None) and args.executor != "ray":
        # Evaluations resolve their device where they run (so that an env built here can still
        # fork); a device this machine does not have is bad input, said once before any run starts
        # rather than by every evaluation. (A Ray cluster's devices are its own.)
        resolve_device(args.device)
    return ExecutorSpec(
        name=args.executor,
        workers=None if args.executor == "serial" else args.workers,
        ray_address=args.ray_address,
        num_gpus=args.num_gpus,
        threads=args.threads,
        per_gpu=args.per_gpu,
    )


# ---------------------------------------------------------------------- commands
def cmd_envs(args: argparse.Namespace) -> int:
    from nas_gym.registration import ENVS

    width = max(map(len, ENVS))
    for env_id, description in ENVS.items():
        print(f"{env_id:<{width}}  {description}")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    from agents import list_agents

    agents = list_agents()
    width = max(map(len, agents))
    for name, description in agents.items():
        print(f"{name:<{width}}  {description}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nas_gym.experiments.config import SearchConfig
    from nas_gym.experiments.folder import resume_config
    from nas_gym.experiments.runs import run_search

    if args.resume and not args.out:
        raise UsageError("nas-gym search: --resume needs --out DIR, the folder of the run to continue")
    out = _out_folder(args.out, f"{args.env}-{args.agent}")
    asked = {
        "env": _check_env_id(args.env),
        "agent": _check_agent(args.agent),
        "episodes": args.episodes,
        "seed": args.seed,
        "budget_seconds": args.budget_seconds,
        "env_kwargs": _env_kwargs(args),
        "num_envs": args.num_envs,
    }
    if args.resume:
        config = resume_config(out, asked)
    elif args.episodes is None and args.budget_seconds is None:
        raise UsageError("nas-gym search: expected --episodes N or --budget-seconds T, got neither")
    else:
        config = SearchConfig(**asked)
    executor = _executor(args)
    _warn_idle_workers(args, config)
    # The bar appears once the env is built, so set-up errors print as one line. It counts
    # episodes, or simulated seconds for a time budget, so that tqdm's estimate is the time left.
    by_time = config.episodes is None
    bars: list[Any] = []

    def on_start(history: list[dict[str, Any]]) -> None:
        STARTED.append(True)
        done = history[-1]["cumulative_seconds"] if by_time and history else len(history)
        bars.append(
            tqdm(
                total=config.budget_seconds if by_time else config.episodes,
                initial=done,
                desc=f"{args.agent} on {args.env}",
                unit="sim s" if by_time else "ep",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        )

    def on_episode(record: dict[str, Any], best: dict[str, Any] | None) -> None:
        from agents.results import reward_key

        bar = bars[0]
        bar.n = min(record["cumulative_seconds"], bar.total) if by_time else record["episode"] + 1
        postfix = {"episodes": record["episode"] + 1} if by_time else {}
        postfix.update(best=f"{reward_key(best):.4f}" if best else "-", last=f"{reward_key(record):.4f}")
        if record.get("cached"):
            postfix["cached"] = "yes"
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    try:
        summary = run_search(
            config,
            out,
            resume=args.resume,
            on_episode=on_episode,
            on_start=on_start,
            tensorboard=args.tensorboard,
            executor=executor,
        )
    finally:
        for bar in bars:
            bar.close()
    best = summary["best_reward"]
    print(
        f"episodes: {summary['episodes']}  best reward: {best if isinstance(best, list) else f'{best:.4f}'}"
    )
    print(f"best architecture: {summary['best_arch']}")
    print(f"run folder: {out} (history.jsonl, summary.json, evaluations.sqlite)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nas_gym.experiments.compare import run_compare

    _check_env_id(args.env)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    if not agents:
        raise UsageError("nas-gym compare: expected --agents A,B,..., got none")
    for agent in agents:
        _check_agent(agent)
    if (args.episodes is None) == (args.budget_seconds is None):
        raise UsageError("nas-gym compare: expected exactly one of --episodes N and --budget-seconds T")
    if len(set(agents)) != len(agents):
        raise UsageError(f"nas-gym compare: expected distinct agents, got {','.join(agents)}")
    out = _out_folder(args.out, f"compare-{args.env}")
    env_kwargs, executor = _env_kwargs(args), _executor(args)
    _check_env_kwargs(args.env, env_kwargs)
    bars: list[Any] = []

    def on_start() -> None:
        STARTED.append(True)
        bars.append(
            tqdm(total=len(agents) * args.seeds, desc=f"compare on {args.env}", unit="run", file=sys.stderr)
        )

    def on_result(result) -> None:
        row = result.row
        bars[0].update(1)
        test = row["test_accuracy"]
        best = row["best_reward"]
        bars[0].set_postfix_str(
            f"{row['agent']} seed {row['seed']}: best {best if isinstance(best, list) or best is None else f'{best:.4f}'}"
            + ("" if test is None else f", test {test:.4f}")
        )

    try:
        run_compare(
            args.env,
            agents,
            args.seeds,
            out,
            episodes=args.episodes,
            budget_seconds=args.budget_seconds,
            env_kwargs=env_kwargs,
            executor=executor,
            on_start=on_start,
            on_result=on_result,
        )
    finally:
        for bar in bars:
            bar.close()
    print((out / "summary.md").read_text())
    print(f"written: {out / 'results.csv'}, {out / 'summary.md'}, {out / 'best_so_far.png'}")
    if env_kwargs.get("objectives"):
        print(f"fronts: {out / 'fronts.csv'}, {out / 'hypervolume.png'}")
    return 0


def _check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Build the env once here, so that bad env options fail before any run starts."""
    import gymnasium as gym

    env = gym.make(env_id, **kwargs)
    env.close()


def cmd_train(args: argparse.Namespace) -> int:
    from nas_gym.backends.cifar.budget import resolve_budget
    from nas_gym.backends.cifar.trainer import final_train
    from nas_gym.core.devices import resolve_device
    from nas_gym.spaces import make_space

    space = make_space(args.space)
    arch = space.format(space.parse(args.arch))
    out = _out_folder(args.out, "train")
    if (out / "train.json").exists():
        raise UsageError(f"nas-gym train: {out / 'train.json'} exists; pass another --out")
    # final_train checks these again, but only after the run counts as started: a bad --device or
    # --budget must end as one line, not as a traceback.
    resolve_budget(args.budget, resolve_device(args.device).type)
    print(f"training {arch} ({space.name}) with budget {args.budget!r} ...", file=sys.stderr)
    STARTED.append(True)
    result = final_train(
        space,
        arch,
        budget=args.budget,
        device=args.device,
        seed=args.seed,
        threads=args.threads,
        progress=lambda epoch, epochs: print(f"epoch {epoch}/{epochs}", file=sys.stderr, flush=True),
    )
    result = {"space": space.name, **result}
    print(f"validation accuracy: {result['val_accuracy']:.4f}")
    print(f"test accuracy:       {result['test_accuracy']:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"written: {out / 'train.json'}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from nas_gym.backends.download import DATASETS, DownloadError, download
    from nas_gym.core.config import resolve_data_dir

    choices = [*DATASETS, "all"]
    if not args.datasets:
        raise UsageError(
            f"nas-gym download: expected one or more of {', '.join(choices)}, got none "
            "(e.g. `nas-gym download all`)"
        )
    for name in args.datasets:
        if name not in choices:
            raise UsageError(
                f"nas-gym download: expected one of {', '.join(choices)}, got {name!r}"
                f"{did_you_mean(name, choices)}"
            )
    names = list(DATASETS) if "all" in args.datasets else args.datasets
    print(f"data folder: {resolve_data_dir()}")
    try:
        download(names, echo=print)
    except (DownloadError, ImportError) as exc:
        # A refused file or a missing optional pandas: the message already names the file, the URL
        # and what to do; DownloadError is an OSError, whose generic line would lose that.
        return one_line(exc)
    except KeyboardInterrupt:
        print("nas-gym: download interrupted; no partial file was left behind", file=sys.stderr)
        return 130
    return 0


def _warn_idle_workers(args: argparse.Namespace, config: Any) -> None:
    """Say so when --workers exceeds the evaluations that can run at once."""
    if not args.workers or args.workers == 1 or args.executor == "serial":
        return
    from agents import make_agent

    agent = make_agent(args.agent)
    at_once = (config.num_envs or agent.num_envs) if agent.supports_batches else 1
    if at_once < args.workers:
        hint = f"pass --num-envs {args.workers}" if agent.supports_batches else "it evaluates one at a time"
        warnings.warn(
            f"--workers {args.workers}, but agent {args.agent!r} has at most {at_once} evaluation(s) in flight: {hint}",
            UserWarning,
            stacklevel=2,
        )


def _out_folder(out: str | None, default_name: str) -> Path:
    """``--out``, or ``runs/<default_name>-<time>`` (created only once a run starts); refused
    when it names a file."""
    path = Path(out) if out else Path("runs") / f"{default_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if path.exists() and not path.is_dir():
        raise UsageError(f"expected --out to name a folder, got the file {path}")
    return path


def one_line(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr and return the usage exit code (``NAS_GYM_DEBUG=1``:
    raise it, traceback and all)."""
    if os.environ.get("NAS_GYM_DEBUG"):
        raise exc
    print(f"nas-gym: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
    return EXIT_USAGE
