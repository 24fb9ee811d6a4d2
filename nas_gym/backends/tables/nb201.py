"""NAS-Bench-201: the table of all 15,625 cells (``nasbench201/nasbench201_all15625.csv`` under the
data folder) and :class:`NB201Evaluator`, the reward backend of ``NASBench201-v0``."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.backends.tables.nb201_costs import COSTS_VERSION, cell_index, load_nb201_costs
from nas_gym.backends.tables.reader import (
    Optimum,
    RowIndex,
    TableError,
    cached_table,
    metric_values,
    read_bytes,
    where_hint,
)
from nas_gym.core.config import resolve_data_dir
from nas_gym.core.errors import did_you_mean
from nas_gym.spaces.base import InvalidArchitectureError
from nas_gym.spaces.nb201 import NB201Space

NB201_FILE = Path("nasbench201") / "nasbench201_all15625.csv"
"""The NAS-Bench-201 table, relative to the data folder."""

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


# ---------------------------------------------------------------------------- NAS-Bench-201
class NB201Table(RowIndex):
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
                f"malformed NAS-Bench-201 table {path}: expected {expected}; {problem}. {where_hint(NB201_FILE)}"
            )

        raw = read_bytes(path, NB201_FILE, expected)
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


def load_nb201_table(data_dir: str | os.PathLike[str] | None = None) -> NB201Table:
    """The NAS-Bench-201 table of the data folder, read on the first call of the process only."""
    return cached_table(NB201Table, resolve_data_dir(data_dir) / NB201_FILE)


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
    - ``train_seconds``: the simulated cost of the evaluation, ``E *
      c10valid_train_time_per_epoch_s + c10valid_valid_eval_time_s`` with ``E`` = 12 for ``"12ep"``
      and 200 for ``"200ep"``. The table only records CIFAR-10 times, so they stand for every
      dataset.
    - ``params``, ``flops``: the parameters and multiply-adds of the cell's network for ``dataset``
      (10, 100 or 120 classes; 32x32 input, 16x16 for ImageNet16-120). The table has neither: they
      are computed once from the project's own network and cached
      (:mod:`~nas_gym.backends.tables.nb201_costs`).
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
        _check_metric(dataset, metric)
        self.data_dir = resolve_data_dir(data_dir)
        """The data folder, resolved once so that a pickled copy reads the same file."""
        self.dataset = dataset
        self.metric = metric
        table = load_nb201_table(self.data_dir)
        self.fingerprint = f"nasbench201-table:{dataset}:{metric}:{table.sha256[:16]}:costs-v{COSTS_VERSION}"
        """Identity in the evaluation store: backend, dataset, metric, the table's checksum and the
        version of the cost computation."""
        self._bind(table)

    def _bind(self, table: NB201Table) -> None:
        # Plain lists: indexing them is the cheapest lookup of the hot path.
        columns = table.columns
        epochs = 12 if self.metric == "12ep" else 200
        seconds = epochs * columns["c10valid_train_time_per_epoch_s"] + columns["c10valid_valid_eval_time_s"]
        self._table: NB201Table | None = table
        self._accuracy: list[float] = (
            columns[_NB201_VALID_COLUMNS[self.dataset, self.metric]] / 100
        ).tolist()
        self._test_accuracy: list[float] = (columns[_NB201_TEST_COLUMNS[self.dataset]] / 100).tolist()
        self._seconds: list[float] = seconds.tolist()
        self._index: list[int] = columns["arch_index"].astype(np.int64).tolist()
        costs = load_nb201_costs(self.dataset)
        rows = cell_index(np.stack([columns[c] for c in NB201_OP_COLUMNS], axis=1).astype(np.int64))
        self._params: list[int] = costs.params[rows].tolist()
        self._flops: list[int] = costs.flops[rows].tolist()

    @property
    def fidelities(self) -> tuple[str, ...]:
        """The fidelities of this dataset, cheapest first: ``("12ep", "200ep")`` on ``cifar10``,
        ``("12ep",)`` elsewhere (the table has no other validation accuracy there)."""
        return tuple(m for m in NB201_METRICS if (self.dataset, m) in _NB201_VALID_COLUMNS)

    @property
    def fidelity(self) -> str:
        """The fidelity of the reward: the metric."""
        return self.metric

    def with_fidelity(self, fidelity: str) -> NB201Evaluator:
        """This evaluator with the metric ``fidelity`` (``"12ep"`` or ``"200ep"``)."""
        if fidelity not in self.fidelities:
            raise ValueError(
                f"expected a fidelity in {self.fidelities} for dataset {self.dataset!r}, got {fidelity!r}"
                f"{did_you_mean(str(fidelity), self.fidelities)}"
            )
        return NB201Evaluator(self.data_dir, dataset=self.dataset, metric=fidelity)

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
            "params": self._params[i],
            "flops": self._flops[i],
            "train_seconds": self._seconds[i],
            "arch_index": self._index[i],
        }

    def optimum(self) -> dict[str, Any]:
        """The table's best values, what regret is measured against: ``reward`` (the best
        ``accuracy``: the optimum of the default objective ``reward="accuracy"``), ``arch`` (the
        cell that has it) and ``test_accuracy``, for this dataset and metric."""
        reward = self.best("accuracy")
        return {
            "reward": reward.value,
            "arch": reward.arch,
            "test_accuracy": self.best("test_accuracy").value,
        }

    def transfer(self, arch: str) -> dict[str, float]:
        """The 200-epoch test accuracy (a fraction) of ``arch`` on every dataset of the table: how
        a cell chosen on one dataset does on the others."""
        i = self.table.row(arch)
        return {
            dataset: float(self.table.columns[column][i]) / 100
            for dataset, column in _NB201_TEST_COLUMNS.items()
        }

    def metric_range(self, key: str) -> tuple[float, float] | None:
        """The smallest and largest value of ``key`` (``"accuracy"``, ``"params"`` or ``"flops"``) over
        the table's cells, what bounds a vector reward (``objectives=``); ``None`` for other keys."""
        self.table  # noqa: B018 - binds the columns of a copy that was unpickled
        values = {"accuracy": self._accuracy, "params": self._params, "flops": self._flops}.get(key)
        return None if values is None else (float(min(values)), float(max(values)))

    def best(self, key: str = "test_accuracy") -> Optimum:
        """The table's best architecture for ``key`` (``"accuracy"``, the reward, or
        ``"test_accuracy"``) and its value, for this dataset and metric."""
        table = self.table
        values = metric_values(key, {"accuracy": self._accuracy, "test_accuracy": self._test_accuracy}, self)
        best = int(np.argmax(values))
        return Optimum(table.arch_strs[best], float(values[best]))

    def __getstate__(self) -> dict[str, Any]:
        # The table stays behind: the receiving process loads (or already has) its own copy.
        state = self.__dict__.copy()
        for name in ("_table", "_accuracy", "_test_accuracy", "_seconds", "_index", "_params", "_flops"):
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


def _check_metric(dataset: str, metric: str) -> None:
    if metric not in NB201_METRICS:
        raise ValueError(
            f"expected metric in {NB201_METRICS}, got {metric!r}{did_you_mean(str(metric), NB201_METRICS)}"
        )
    if (dataset, metric) not in _NB201_VALID_COLUMNS:
        raise ValueError(
            f"expected metric '12ep' for dataset {dataset!r}, got {metric!r}: the NAS-Bench-201 "
            f"table has 200-epoch validation accuracy for 'cifar10' only ({dataset!r} has 200-epoch "
            "test accuracy, which must not feed the reward)"
        )
