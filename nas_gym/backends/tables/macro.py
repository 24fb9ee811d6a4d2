"""NAS-Bench-Macro: the table of all 6,561 networks (``nasbenchmacro/nas-bench-macro_cifar10.json``
under the data folder) and :class:`MacroEvaluator`, the reward backend of ``NASBenchMacro-v0``."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.backends.tables.reader import (
    Optimum,
    RowIndex,
    TableError,
    cached_table,
    metric_values,
    read_bytes,
    where_hint,
)
from nas_gym.core.checks import check_int, is_finite_number
from nas_gym.core.config import resolve_data_dir

MACRO_FILE = Path("nasbenchmacro") / "nas-bench-macro_cifar10.json"
"""The NAS-Bench-Macro table, relative to the data folder."""
MACRO_KEYS = ("test_acc", "params", "flops")
"""The keys every entry of the NAS-Bench-Macro JSON must have."""
_MACRO_SIZE = 3**8
_MACRO_KEY_RE = re.compile(r"[012]{8}")


# ---------------------------------------------------------------------------- NAS-Bench-Macro
class MacroTable(RowIndex):
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
                f"{where_hint(MACRO_FILE)}"
            )

        raw = read_bytes(path, MACRO_FILE, expected)
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


def load_macro_table(data_dir: str | os.PathLike[str] | None = None) -> MacroTable:
    """The NAS-Bench-Macro table of the data folder, read on the first call of the process only."""
    return cached_table(MacroTable, resolve_data_dir(data_dir) / MACRO_FILE)


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
        self.seed = check_int(seed, "seed")
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
        reward = self.best("accuracy")
        return {
            "reward": reward.value,
            "arch": reward.arch,
            "test_accuracy": self.best("test_accuracy").value,
        }

    def best(self, key: str = "test_accuracy") -> Optimum:
        """The table's best architecture for ``key`` (``"accuracy"``, the reward, or
        ``"test_accuracy"``) under this seed's choice of runs, and its value."""
        table = self.table
        runs = np.array([self.run_of(arch) for arch in table.archs])
        chosen = table.test_acc[np.arange(len(table)), runs]
        # The same arithmetic as __call__, so the optimum equals the metric of its architecture.
        options = {"accuracy": chosen / 100, "test_accuracy": (table.test_acc.sum(axis=1) - chosen) / 200}
        values = metric_values(key, options, self)
        best = int(np.argmax(values))
        return Optimum(table.archs[best], float(values[best]))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_table"] = None
        return state

    def __repr__(self) -> str:
        return f"MacroEvaluator(data_dir={str(self.data_dir)!r}, seed={self.seed})"
