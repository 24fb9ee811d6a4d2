"""The ``nas-gym`` command line: ``envs``, ``agents``, ``search``, ``compare``, ``train``, ``download``.

Wrong arguments end with exit code 2 and one line on stderr, never a traceback: the arguments, the
env and the agent are all checked before any run starts, and an error raised while a search runs
(a programming error) keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from nas_gym.core.errors import did_you_mean

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _number(kind: type, minimum: float, strict: bool, what: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` that is ``> minimum`` (``strict``) or ``>= minimum``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


_positive_int = _number(int, 0, strict=True, what="a positive integer")
_non_negative_int = _number(int, 0, strict=False, what="an integer >= 0")
_positive_float = _number(float, 0.0, strict=True, what="a positive number")
_non_negative_float = _number(float, 0.0, strict=False, what="a number >= 0")


def _budget(text: str) -> str | dict[str, Any]:
    """A budget name, or a JSON object of changes (``'{"base": "smoke", "epochs": 2}'``)."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"expected a budget name or a JSON object, got {text!r}"
            ) from exc
    return text


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list, e.g. ``accuracy,params``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


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
    from nas_gym.parallel.spec import ExecutorSpec

    return ExecutorSpec(
        name=args.executor,
        workers=None if args.executor == "serial" else args.workers,
        ray_address=args.ray_address,
        num_gpus=args.num_gpus,
        threads=args.threads,
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
        _STARTED.append(True)
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
        _STARTED.append(True)
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
    _STARTED.append(True)
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
        return _one_line(exc)
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


# ---------------------------------------------------------------------- parser
def _add_env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget", type=_budget, help="NASCifar-v0 budget: auto, smoke, cpu-proxy, proxy, full or JSON"
    )
    parser.add_argument("--device", help="NASCifar-v0 device: auto, cpu, cuda, cuda:N")
    parser.add_argument("--space", help="search space preset (default: the env's)")
    parser.add_argument("--reward", help="objective: accuracy (default), mnas-params, mnas-flops")
    parser.add_argument(
        "--dataset", help="NASBench201-v0 dataset: cifar10 (default), cifar100, ImageNet16-120"
    )
    parser.add_argument(
        "--objectives", type=_names, help="a vector reward, e.g. accuracy,params (multi-objective agents)"
    )


def _add_executor_options(
    parser: argparse.ArgumentParser, what: str = "evaluations", default: str = "serial"
) -> None:
    from nas_gym.parallel.executors import EXECUTORS

    parser.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default=default,
        help=f"where {what} run: " + "; ".join(f"{k}: {v}" for k, v in EXECUTORS.items()),
    )
    parser.add_argument("--workers", type=_positive_int, help="concurrent workers of the executor")
    parser.add_argument(
        "--ray-address", help="an existing Ray cluster (default: a local instance on loopback)"
    )
    parser.add_argument(
        "--num-gpus",
        type=_non_negative_float,
        default=0.0,
        help="GPUs per Ray task (fractions allowed); ray only",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        help="CPU threads per evaluation (default: the cores divided among the concurrent evaluations); "
        "results agree across executors for the same count",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas-gym", description="Neural architecture search as Gymnasium environments.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("envs", help="list the environments").set_defaults(func=cmd_envs)
    sub.add_parser("agents", help="list the agents").set_defaults(func=cmd_agents)

    search = sub.add_parser("search", help="run one search and write its run folder")
    search.add_argument("--env", required=True, help="env id, e.g. NASCifar-v0 (see `nas-gym envs`)")
    search.add_argument("--agent", required=True, help="agent name (see `nas-gym agents`)")
    search.add_argument("--episodes", type=_positive_int, help="finished episodes to run")
    search.add_argument("--budget-seconds", type=_positive_float, help="stop at this simulated train time")
    _add_env_options(search)
    search.add_argument("--seed", type=_non_negative_int, default=0, help="seed of agent and evaluation")
    search.add_argument("--out", help="run folder (default runs/<env>-<agent>-<time>)")
    search.add_argument("--resume", action="store_true", help="continue the run in --out")
    search.add_argument(
        "--tensorboard", metavar="DIR", help="write TensorBoard logs (reward, best, agent losses)"
    )
    search.add_argument(
        "--num-envs",
        type=_positive_int,
        help="architectures random/evolution/reinforce propose at once and evaluate together (default: the "
        "agent's own); the history depends on it, never on --executor or --workers",
    )
    _add_executor_options(search)
    search.set_defaults(func=cmd_search)

    compare = sub.add_parser("compare", help="compare agents over seeds on one env")
    compare.add_argument("--env", required=True, help="env id (see `nas-gym envs`)")
    compare.add_argument("--agents", required=True, help="comma-separated agent names")
    compare.add_argument("--seeds", type=_positive_int, required=True, help="runs per agent (seeds 0..K-1)")
    compare.add_argument("--episodes", type=_positive_int, help="episodes per run")
    compare.add_argument("--budget-seconds", type=_positive_float, help="simulated train seconds per run")
    _add_env_options(compare)
    _add_executor_options(compare, what="runs (default: processes, one per CPU core)", default="processes")
    compare.add_argument("--out", help="output folder (default runs/compare-<env>-<time>)")
    compare.set_defaults(func=cmd_compare)

    train = sub.add_parser("train", help="final training of one architecture: validation and test accuracy")
    train.add_argument("--space", default="seed", help="search space preset")
    train.add_argument("--arch", required=True, help="canonical architecture string")
    train.add_argument("--budget", type=_budget, default="full", help="smoke, cpu-proxy, proxy, full or JSON")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    train.add_argument("--seed", type=_non_negative_int, default=0)
    train.add_argument("--threads", type=_positive_int, help="CPU threads (default: every core)")
    train.add_argument("--out", help="folder for train.json")
    train.set_defaults(func=cmd_train)

    download = sub.add_parser(
        "download",
        help="fetch CIFAR-10 and the benchmark tables into the data folder, each file checked",
        description="Fetch data into $NAS_GYM_DATA (else ~/.cache/nas_gym); NAS_GYM_MIRROR=URL "
        "fetches the same files from URL, laid out as in the data folder.",
    )
    download.add_argument("datasets", nargs="*", metavar="DATASET", help="cifar10, nb201, macro or all")
    download.set_defaults(func=cmd_download)
    return parser


_STARTED: list[bool] = []
"""Set once a command's real work starts: before that, a ValueError or TypeError is bad input
(one line, exit 2); after it, a programming error (its traceback is kept)."""


def _os_error_line(exc: OSError) -> str:
    """One line on an OS error: what failed, on which path, and what to do."""
    if exc.filename is None:  # no path to name (a refused connection): its own message says what failed
        return f"nas-gym: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    path = exc.filename
    reason = exc.strerror or str(exc)
    hint = {
        "File exists": "it is a file where a folder is needed, or the other way round: pass another path",
        "Permission denied": "pass a path you may write to",
        "No space left on device": "free some space or pass a path on another disk",
        "Not a directory": "a part of the path is a file: pass another path",
        "Read-only file system": "pass a path on a writable disk",
    }.get(reason, "check the path")
    return f"nas-gym: error: {reason}: {path}: {hint}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas-gym`` command."""
    from nas_gym.backends.cifar.data import DataNotFoundError
    from nas_gym.backends.tables.reader import TableError
    from nas_gym.evaluation.store import StoreError
    from nas_gym.experiments.folder import RunFolderError
    from nas_gym.spaces import InvalidArchitectureError

    _STARTED.clear()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            # Show our own warnings as one line each, not with source excerpts.
            warnings.showwarning = _one_line_warning
            return int(args.func(args))
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (InvalidArchitectureError, RunFolderError, StoreError, DataNotFoundError, TableError) as exc:
        # Bad input met deeper down (an architecture that does not parse, a foreign store, missing
        # data): one line. NAS_GYM_DEBUG=1 shows the traceback.
        return _one_line(exc)
    except ModuleNotFoundError as exc:
        # An optional extra that is not installed (ray, tensorboard) is the user's to fix; a module
        # of this project that does not import is a bug, whose traceback is kept.
        if (exc.name or "").split(".")[0] in ("nas_gym", "agents"):
            raise
        return _one_line(exc)
    except OSError as exc:
        if os.environ.get("NAS_GYM_DEBUG"):
            raise
        print(_os_error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        if _STARTED:  # raised by the search itself: a bug, not bad input
            raise
        return _one_line(exc)
    except KeyboardInterrupt:
        print("nas-gym: interrupted; finished episodes are saved (resume with --resume)", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> int:
    if os.environ.get("NAS_GYM_DEBUG"):
        raise exc
    print(f"nas-gym: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
    return EXIT_USAGE


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
