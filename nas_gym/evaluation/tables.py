"""Tabulated benchmarks: the NAS-Bench-201 and NAS-Bench-Macro tables, and the evaluators that
look an architecture up in them instead of training it.

Each table file is read once per process: :func:`load_nb201_table` and :func:`load_macro_table`
keep the parsed table in a module-level cache keyed by the resolved file path, so every copy of
an env (and every evaluator) in a process shares one read-only table. A lookup is a dict access
by the canonical architecture string plus a few list indexings.

Files, under the data folder (``data_dir=``, else ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``):

- ``nasbench201/nasbench201_all15625.csv``: one row per NAS-Bench-201 cell (15,625 rows);
- ``nasbenchmacro/nas-bench-macro_cifar10.json``: one entry per NAS-Bench-Macro network (6,561).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from nas_gym.config import DATA_ENV_VAR, resolve_data_dir
from nas_gym.errors import did_you_mean
from nas_gym.objectives import is_finite_number
from nas_gym.spaces.base import InvalidArchitectureError
from nas_gym.spaces.nb201 import NB201Space

NB201_FILE = Path("nasbench201") / "nasbench201_all15625.csv"
"""The NAS-Bench-201 table, relative to the data folder."""
MACRO_FILE = Path("nasbenchmacro") / "nas-bench-macro_cifar10.json"
"""The NAS-Bench-Macro table, relative to the data folder."""

NB201_OP_COLUMNS = ("op_1from0", "op_2from0", "op_2from1", "op_3from0", "op_3from1", "op_3from2")
NB201_COLUMNS = (
    "arch_index",
    "arch_str",
    *NB201_OP_COLUMNS,
    "c10valid_valid_acc_12ep",
    "c10valid_valid_acc_200ep",
    "c100_valid_acc_12ep",
    "in16_valid_acc_12ep",
    "c10_test_acc_200ep",
    "c100_test_acc_200ep",
    "in16_test_acc_200ep",
    "c10valid_train_time_per_epoch_s",
    "c10valid_train_time_200ep_s",
    "c10valid_valid_eval_time_s",
)
"""The columns the NAS-Bench-201 evaluator reads; the CSV must have at least these (the shared
file has 28; all its numeric columns are loaded)."""
MACRO_KEYS = ("test_acc", "params", "flops")
"""The keys every entry of the NAS-Bench-Macro JSON must have."""

NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NB201_METRICS = ("12ep", "200ep")
_NB201_VALID_COLUMNS = {
    ("cifar10", "12ep"): "c10valid_valid_acc_12ep",
    ("cifar10", "200ep"): "c10valid_valid_acc_200ep",
    ("cifar100", "12ep"): "c100_valid_acc_12ep",
    ("ImageNet16-120", "12ep"): "in16_valid_acc_12ep",
}
"""Validation accuracy column of each (dataset, metric); the table has no 200-epoch validation
accuracy for CIFAR-100 and ImageNet16-120."""
_NB201_TEST_COLUMNS = {
    "cifar10": "c10_test_acc_200ep",
    "cifar100": "c100_test_acc_200ep",
    "ImageNet16-120": "in16_test_acc_200ep",
}
_NB201_SIZE = 5**6
_MACRO_SIZE = 3**8
_MACRO_KEY_RE = re.compile(r"[012]{8}")


class TableError(ValueError):
    """A benchmark table that is malformed: the message names the file, what was expected and
    the ``NAS_GYM_DATA`` variable."""


class TableNotFoundError(TableError, FileNotFoundError):
    """A benchmark table that is not where the data folder says it is."""


class Optimum(NamedTuple):
    """The best architecture of a table for one metric."""

    arch: str
    """Canonical string of the architecture (the first one in table order on ties)."""
    value: float
    """Its metric, a fraction."""


def _where(relative: Path) -> str:
    return f"Set {DATA_ENV_VAR} (or pass data_dir=) to the folder that holds {relative.as_posix()}."


def _read_bytes(path: Path, relative: Path, expected: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TableNotFoundError(
            f"benchmark table not found: {path}. Expected {expected}. {_where(relative)}"
        ) from None
    except IsADirectoryError:
        raise TableError(f"expected a file at {path}, got a directory. {_where(relative)}") from None


class _RowIndex:
    """Row lookup by canonical architecture string, shared by both tables."""

    path: Path
    _rows: dict[str, int]
    _expected: str
    """What :meth:`row` says it expected, e.g. ``"a NAS-Bench-201 arch_str"``."""

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, arch: object) -> bool:
        return arch in self._rows

    def row(self, arch: str) -> int:
        """The row of the canonical string ``arch``; raises :class:`InvalidArchitectureError`."""
        try:
            return self._rows[arch]
        except (KeyError, TypeError):
            raise InvalidArchitectureError(
                f"expected {self._expected} of the table {self.path}, got {arch!r}"
            ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, rows={len(self)})"


# ---------------------------------------------------------------------------- NAS-Bench-201
class NB201Table(_RowIndex):
    """The NAS-Bench-201 CSV, parsed and checked.

    ``columns`` maps every numeric column name to a read-only float array in row order;
    ``arch_strs`` holds the canonical strings in row order and :meth:`row` finds the row of one.
    Use :func:`load_nb201_table` to get the cached instance instead of :meth:`from_file`.
    """

    def __init__(self, path: Path, sha256: str, arch_strs: tuple[str, ...], columns: dict[str, np.ndarray]):
        self.path = path
        self.sha256 = sha256
        self.arch_strs = arch_strs
        self.columns = columns
        self._rows = {arch: i for i, arch in enumerate(arch_strs)}
        self._expected = "a NAS-Bench-201 arch_str"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> NB201Table:
        """Read and check the CSV at ``path``; raises :class:`TableError` (or
        :class:`TableNotFoundError`) with the expected layout when it is not a valid table."""
        path = Path(path)
        expected = (
            f"a CSV of all {_NB201_SIZE:,} NAS-Bench-201 cells with at least the columns "
            f"{', '.join(NB201_COLUMNS)}"
        )

        def malformed(problem: str) -> TableError:
            return TableError(
                f"malformed NAS-Bench-201 table {path}: expected {expected}; {problem}. {_where(NB201_FILE)}"
            )

        raw = _read_bytes(path, NB201_FILE, expected)
        try:
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise malformed(f"got unreadable text ({exc})") from None
        if not rows:
            raise malformed("got an empty file")
        header, body = rows[0], rows[1:]
        missing = [c for c in NB201_COLUMNS if c not in header]
        if missing:
            raise malformed(f"got no column {', '.join(missing)}")
        for line, row in enumerate(body, start=2):
            if len(row) != len(header):
                raise malformed(f"got {len(row)} fields on line {line} for {len(header)} columns")
        if len(body) != _NB201_SIZE:
            raise malformed(f"got {len(body):,} rows")

        fields = dict(zip(header, zip(*body)))
        columns: dict[str, np.ndarray] = {}
        for name, values in fields.items():
            if name == "arch_str":
                continue
            try:
                column = np.array(values, dtype=np.float64)
            except ValueError:
                if name in NB201_COLUMNS:
                    line = next(i for i, v in enumerate(values, start=2) if not _is_number(v))
                    raise malformed(f"got {values[line - 2]!r} in column {name} on line {line}") from None
                continue  # a non-numeric extra column: not needed
            if not np.isfinite(column).all():
                line = int(np.flatnonzero(~np.isfinite(column))[0]) + 2
                raise malformed(f"got {values[line - 2]!r} in column {name} on line {line}")
            column.flags.writeable = False
            columns[name] = column

        arch_strs = tuple(fields["arch_str"])
        space = NB201Space()
        codes = np.stack([columns[c] for c in NB201_OP_COLUMNS], axis=1)
        for line, (arch, ops) in enumerate(zip(arch_strs, codes.tolist()), start=2):
            try:
                parsed = space.parse(arch)
            except InvalidArchitectureError as exc:
                raise malformed(f"got an invalid arch_str on line {line} ({exc})") from None
            if list(parsed) != ops:
                raise malformed(
                    f"got op codes {[int(v) if v.is_integer() else v for v in ops]} that do not match "
                    f"arch_str {arch!r} on line {line}"
                )
        if len(set(arch_strs)) != len(arch_strs):
            raise malformed("got the same arch_str on more than one row")
        for name in NB201_COLUMNS:
            if "_acc_" in name and not ((columns[name] >= 0) & (columns[name] <= 100)).all():
                raise malformed(f"got a value outside 0..100 (percent) in column {name}")
        return cls(path, hashlib.sha256(raw).hexdigest(), arch_strs, columns)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- NAS-Bench-Macro
class MacroTable(_RowIndex):
    """The NAS-Bench-Macro JSON, parsed and checked.

    ``archs`` holds the 8-digit strings in file order; ``test_acc`` (shape ``(n, 3)``, percent),
    ``params`` and ``flops`` are read-only arrays in that order. Use :func:`load_macro_table` to
    get the cached instance instead of :meth:`from_file`.
    """

    def __init__(
        self,
        path: Path,
        sha256: str,
        archs: tuple[str, ...],
        test_acc: np.ndarray,
        params: np.ndarray,
        flops: np.ndarray,
    ):
        self.path = path
        self.sha256 = sha256
        self.archs = archs
        self.test_acc = test_acc
        self.params = params
        self.flops = flops
        self._rows = {arch: i for i, arch in enumerate(archs)}
        self._expected = "an 8-digit NAS-Bench-Macro architecture"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MacroTable:
        """Read and check the JSON at ``path``; raises :class:`TableError` (or
        :class:`TableNotFoundError`) with the expected layout when it is not a valid table."""
        path = Path(path)
        expected = (
            f"a JSON object with all {_MACRO_SIZE:,} NAS-Bench-Macro architectures as keys (8 digits "
            f"in 0..2) and objects with the keys {', '.join(MACRO_KEYS)} as values (test_acc: 3 "
            "accuracies in percent)"
        )

        def malformed(problem: str) -> TableError:
            return TableError(
                f"malformed NAS-Bench-Macro table {path}: expected {expected}; {problem}. "
                f"{_where(MACRO_FILE)}"
            )

        raw = _read_bytes(path, MACRO_FILE, expected)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise malformed(f"got invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise malformed(f"got a JSON {type(data).__name__}")
        archs, test_acc, params, flops = [], [], [], []
        for arch, entry in data.items():
            if not _MACRO_KEY_RE.fullmatch(arch):
                raise malformed(f"got the key {arch!r}")
            if not isinstance(entry, dict) or any(k not in entry for k in MACRO_KEYS):
                got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
                raise malformed(f"got {got} for {arch!r}")
            runs = entry["test_acc"]
            if (
                not isinstance(runs, list)
                or len(runs) != 3
                or not all(is_finite_number(v) and 0 <= v <= 100 for v in runs)
            ):
                raise malformed(f"got test_acc {runs!r} for {arch!r}")
            for key in ("params", "flops"):
                if not (isinstance(entry[key], int) and not isinstance(entry[key], bool) and entry[key] > 0):
                    raise malformed(f"got {key} {entry[key]!r} for {arch!r}")
            archs.append(arch)
            test_acc.append(runs)
            params.append(entry["params"])
            flops.append(entry["flops"])
        if len(archs) != _MACRO_SIZE:
            raise malformed(f"got {len(archs):,} entries")
        arrays = [np.array(test_acc, dtype=np.float64), np.array(params, np.int64), np.array(flops, np.int64)]
        for array in arrays:
            array.flags.writeable = False
        return cls(path, hashlib.sha256(raw).hexdigest(), tuple(archs), *arrays)


# ---------------------------------------------------------------------------- cache
_Table = TypeVar("_Table", NB201Table, MacroTable)
_CACHE: dict[tuple[str, Path], NB201Table | MacroTable] = {}
_CACHE_LOCK = threading.Lock()


def _cached(kind: type[_Table], path: Path) -> _Table:
    key = (kind.__name__, path.resolve())
    with _CACHE_LOCK:
        table = _CACHE.get(key)
        if table is None:
            table = kind.from_file(path)
            _CACHE[key] = table
    return table  # type: ignore[return-value]


def load_nb201_table(data_dir: str | os.PathLike[str] | None = None) -> NB201Table:
    """The NAS-Bench-201 table of the data folder, read on the first call of the process only."""
    return _cached(NB201Table, resolve_data_dir(data_dir) / NB201_FILE)


def load_macro_table(data_dir: str | os.PathLike[str] | None = None) -> MacroTable:
    """The NAS-Bench-Macro table of the data folder, read on the first call of the process only."""
    return _cached(MacroTable, resolve_data_dir(data_dir) / MACRO_FILE)


def clear_table_cache() -> None:
    """Forget the tables read so far (the next load reads the file again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


# ---------------------------------------------------------------------------- evaluators
class NB201Evaluator:
    """The reward backend of ``NASBench201-v0``: metrics of a cell from the NAS-Bench-201 table.

    Returns, for the canonical ``arch_str``:

    - ``accuracy``: the validation accuracy (a fraction) of ``dataset`` under ``metric``.
      ``"12ep"`` (default) is the 12-epoch schedule that the benchmark's own search baselines use as
      the reward; ``"200ep"`` is the full schedule, only tabulated for ``cifar10`` (as
      ``cifar10-valid``: trained on 25k images, validated on the other 25k). Columns:
      ``c10valid_valid_acc_12ep`` / ``c10valid_valid_acc_200ep``, ``c100_valid_acc_12ep``,
      ``in16_valid_acc_12ep``.
    - ``test_accuracy``: the 200-epoch test accuracy on ``dataset`` (``c10_test_acc_200ep``,
      ``c100_test_acc_200ep``, ``in16_test_acc_200ep``), the figure papers report. It never
      feeds the reward.
    - ``train_seconds``: the simulated cost of the evaluation, ``12 *
      c10valid_train_time_per_epoch_s + c10valid_valid_eval_time_s`` for ``"12ep"`` and
      ``c10valid_train_time_200ep_s + c10valid_valid_eval_time_s`` for ``"200ep"``. The table only
      records CIFAR-10 times, so they stand for every dataset.
    - ``params``, ``flops``: ``None`` (the table has neither).
    - ``arch_index``: the benchmark's index of the cell.

    All values are means over the benchmark's training seeds, so a lookup is deterministic. The
    evaluator pickles without its table and finds it again (read once per process) on first use.

    Args:
        data_dir: the data folder (default ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``).
        dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"``.
        metric: ``"12ep"`` or ``"200ep"`` (``cifar10`` only).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        dataset: str = "cifar10",
        metric: str = "12ep",
    ):
        if dataset not in NB201_DATASETS:
            raise ValueError(
                f"expected dataset in {NB201_DATASETS}, got {dataset!r}{did_you_mean(dataset, NB201_DATASETS)}"
            )
        if metric not in NB201_METRICS:
            raise ValueError(f"expected metric in {NB201_METRICS}, got {metric!r}")
        if (dataset, metric) not in _NB201_VALID_COLUMNS:
            raise ValueError(
                f"expected metric '12ep' for dataset {dataset!r}, got {metric!r}: the NAS-Bench-201 "
                f"table has 200-epoch validation accuracy for 'cifar10' only ({dataset!r} has 200-epoch "
                "test accuracy, which must not feed the reward)"
            )
        self.data_dir = resolve_data_dir(data_dir)
        """The data folder, resolved once so that a pickled copy reads the same file."""
        self.dataset = dataset
        self.metric = metric
        table = load_nb201_table(self.data_dir)
        self.fingerprint = f"nasbench201-table:{dataset}:{metric}:{table.sha256[:16]}"
        """Identity in the evaluation store: backend, dataset, metric and the table's checksum."""
        self._bind(table)

    def _bind(self, table: NB201Table) -> None:
        # Plain lists: indexing them is the cheapest lookup of the hot path.
        columns = table.columns
        if self.metric == "12ep":
            seconds = 12 * columns["c10valid_train_time_per_epoch_s"] + columns["c10valid_valid_eval_time_s"]
        else:
            seconds = columns["c10valid_train_time_200ep_s"] + columns["c10valid_valid_eval_time_s"]
        self._table: NB201Table | None = table
        self._accuracy: list[float] = (
            columns[_NB201_VALID_COLUMNS[self.dataset, self.metric]] / 100
        ).tolist()
        self._test_accuracy: list[float] = (columns[_NB201_TEST_COLUMNS[self.dataset]] / 100).tolist()
        self._seconds: list[float] = seconds.tolist()
        self._index: list[int] = columns["arch_index"].astype(np.int64).tolist()

    @property
    def table(self) -> NB201Table:
        """The table (loaded through the process-wide cache)."""
        if self._table is None:
            self._bind(load_nb201_table(self.data_dir))
        assert self._table is not None
        return self._table

    def __call__(self, arch: str) -> dict[str, Any]:
        i = self.table.row(arch)
        return {
            "accuracy": self._accuracy[i],
            "test_accuracy": self._test_accuracy[i],
            "params": None,
            "flops": None,
            "train_seconds": self._seconds[i],
            "arch_index": self._index[i],
        }

    def optimum(self) -> dict[str, float]:
        """The table's best values, what regret is measured against: ``reward`` (the best
        ``accuracy``: the optimum of the default objective ``reward="accuracy"``) and
        ``test_accuracy``, for this dataset and metric."""
        return {"reward": self.best("accuracy").value, "test_accuracy": self.best("test_accuracy").value}

    def best(self, key: str = "test_accuracy") -> Optimum:
        """The table's best architecture for ``key`` (``"accuracy"``, the reward, or
        ``"test_accuracy"``) and its value, for this dataset and metric."""
        table = self.table
        values = _metric_values(key, {"accuracy": self._accuracy, "test_accuracy": self._test_accuracy}, self)
        best = int(np.argmax(values))
        return Optimum(table.arch_strs[best], float(values[best]))

    def __getstate__(self) -> dict[str, Any]:
        # The table stays behind: the receiving process loads (or already has) its own copy.
        state = self.__dict__.copy()
        for name in ("_table", "_accuracy", "_test_accuracy", "_seconds", "_index"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._table = None

    def __repr__(self) -> str:
        return (
            f"NB201Evaluator(data_dir={str(self.data_dir)!r}, dataset={self.dataset!r}, "
            f"metric={self.metric!r})"
        )


class MacroEvaluator:
    """The reward backend of ``NASBenchMacro-v0``: metrics of a network from the NAS-Bench-Macro
    table.

    The benchmark has no validation split: every network was trained three times and only the
    CIFAR-10 **test** accuracy of each run was recorded. So that selection and reporting do not use
    the same number, the reward uses one run and the reported figure the other two:

    - ``accuracy``: the test accuracy (a fraction) of one of the three runs, chosen by a stable
      hash (BLAKE2b) of ``seed`` and the architecture: the same run for the same pair in every
      process, a different split of runs for another ``seed``;
    - ``test_accuracy``: the mean of the two other runs;
    - ``run``: the index (0-2) of the run behind ``accuracy``;
    - ``params``, ``flops``: from the table (FLOPs as multiply-adds of one 32x32 image);
    - ``train_seconds``: ``0.0``. The table records no training time; compare searches on this
      benchmark by number of evaluations, not by simulated time.

    The evaluator pickles without its table and finds it again (read once per process) on first
    use.

    Args:
        data_dir: the data folder (default ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``).
        seed: picks the reward run of each architecture.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"expected seed as an integer, got {type(seed).__name__}")
        self.seed = int(seed)
        self.data_dir = resolve_data_dir(data_dir)
        """The data folder, resolved once so that a pickled copy reads the same file."""
        table = load_macro_table(self.data_dir)
        self.fingerprint = f"nasbench-macro-table:seed={self.seed}:{table.sha256[:16]}"
        """Identity in the evaluation store: backend, seed and the table's checksum."""
        self._table: MacroTable | None = table

    @property
    def table(self) -> MacroTable:
        """The table (loaded through the process-wide cache)."""
        if self._table is None:
            self._table = load_macro_table(self.data_dir)
        return self._table

    def run_of(self, arch: str) -> int:
        """The run (0, 1 or 2) whose accuracy is the reward of ``arch`` under this seed."""
        digest = hashlib.blake2b(f"{self.seed}:{arch}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") % 3

    def __call__(self, arch: str) -> dict[str, Any]:
        table = self.table
        i = table.row(arch)
        runs = table.test_acc[i].tolist()
        run = self.run_of(arch)
        return {
            "accuracy": runs[run] / 100,
            "test_accuracy": (sum(runs) - runs[run]) / 200,
            "run": run,
            "params": int(table.params[i]),
            "flops": int(table.flops[i]),
            "train_seconds": 0.0,
        }

    def optimum(self) -> dict[str, float]:
        """The table's best values under this seed's choice of runs, what regret is measured
        against: ``reward`` (the best ``accuracy``: the optimum of the default objective
        ``reward="accuracy"``) and ``test_accuracy``."""
        return {"reward": self.best("accuracy").value, "test_accuracy": self.best("test_accuracy").value}

    def best(self, key: str = "test_accuracy") -> Optimum:
        """The table's best architecture for ``key`` (``"accuracy"``, the reward, or
        ``"test_accuracy"``) under this seed's choice of runs, and its value."""
        table = self.table
        runs = np.array([self.run_of(arch) for arch in table.archs])
        chosen = table.test_acc[np.arange(len(table)), runs]
        # The same arithmetic as __call__, so the optimum equals the metric of its architecture.
        options = {"accuracy": chosen / 100, "test_accuracy": (table.test_acc.sum(axis=1) - chosen) / 200}
        values = _metric_values(key, options, self)
        best = int(np.argmax(values))
        return Optimum(table.archs[best], float(values[best]))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_table"] = None
        return state

    def __repr__(self) -> str:
        return f"MacroEvaluator(data_dir={str(self.data_dir)!r}, seed={self.seed})"


def _metric_values(key: str, options: Mapping[str, Any], owner: object) -> np.ndarray:
    if key not in options:
        raise ValueError(f"expected key in {sorted(options)} for {type(owner).__name__}.best, got {key!r}")
    return np.asarray(options[key], dtype=np.float64)
