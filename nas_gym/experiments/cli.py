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
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from nas_gym.experiments.commands import (
    EXIT_USAGE,
    STARTED,
    UsageError,
    cmd_agents,
    cmd_compare,
    cmd_download,
    cmd_envs,
    cmd_search,
    cmd_train,
    one_line,
)


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


# ---------------------------------------------------------------------- parser
def _add_env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget", type=_budget, help="NASCifar-v0 budget: auto, smoke, cpu-proxy, proxy, gpu, full or JSON"
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
        help="GPUs per Ray task, fractions allowed (default: 1 when the cluster has GPUs, else 0; "
        "0: on the CPU); ray only",
    )
    parser.add_argument(
        "--per-gpu",
        type=_positive_int,
        help="evaluations per GPU (default 1): processes starts GPUs x N workers, ray tasks take 1/N GPU",
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
    train.add_argument(
        "--budget", type=_budget, default="full", help="smoke, cpu-proxy, proxy, gpu, full or JSON"
    )
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

    STARTED.clear()
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
        return one_line(exc)
    except ModuleNotFoundError as exc:
        # An optional extra that is not installed (ray, tensorboard) is the user's to fix; a module
        # of this project that does not import is a bug, whose traceback is kept.
        if (exc.name or "").split(".")[0] in ("nas_gym", "agents"):
            raise
        return one_line(exc)
    except OSError as exc:
        if os.environ.get("NAS_GYM_DEBUG"):
            raise
        print(_os_error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        if STARTED:  # raised by the search itself: a bug, not bad input
            raise
        return one_line(exc)
    except KeyboardInterrupt:
        print("nas-gym: interrupted; finished episodes are saved (resume with --resume)", file=sys.stderr)
        return 130


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
