"""The NAS-Bench-201 table rebuilt from its three public sources, as the data README describes.

No source holds every column, so the table ``nasbench201/nasbench201_all15625.csv`` joins three
exports of the official API (see ``../shared/data/nasbench201/README.md``):

- A, a CSV: 200-epoch test accuracy on the three datasets and the canonical "unique string"
  (one row per cell, in ``arch_index`` order);
- B, a CSV: 200-epoch ``cifar10-valid`` accuracy, loss and time (column ``index``);
- C, a pandas pickle of a ``DataFrame``: 12-epoch accuracies (column ``arch``).

Rows are joined on ``arch_index`` after checking that all three sources give the same
``arch_str``; values are rounded to 6 decimals with numpy's round-half-to-even and written as
``%.6f``, which reproduces the published table byte for byte.

Source C is read by :class:`FrameUnpickler`, which resolves only the pandas and numpy classes a
``DataFrame`` of numbers and strings is made of: a hostile pickle raises
:class:`UnsafeFrameError` instead of running code. pandas is an optional
dependency (``pip install pandas``), imported only to read C.
"""

from __future__ import annotations

import csv
import importlib
import io
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nas_gym.spaces.base import InvalidArchitectureError
from nas_gym.spaces.nb201 import NB201Space

# Published column -> column of source A, B or C it is copied from (the README's column table).
_FROM_A = {
    "c10_test_acc_200ep": "CIFAR10TestAccuracy200Epochs",
    "c100_test_acc_200ep": "CIFAR100TestAccuracy200Epochs",
    "in16_test_acc_200ep": "ImageNetTestAccuracy200Epochs",
}
_FROM_B = {
    "c10valid_train_acc_200ep": "train-accuracy",
    "c10valid_valid_acc_200ep": "valid-accuracy",
    "c10valid_test_acc_200ep": "test-accuracy",
    "c10valid_train_loss_200ep": "train-loss",
    "c10valid_valid_loss_200ep": "valid-loss",
    "c10valid_test_loss_200ep": "test-loss",
    "c10valid_train_time_per_epoch_s": "train-per-time",
    "c10valid_train_time_200ep_s": "train-all-time",
    "c10valid_valid_eval_time_s": "valid-per-time",
    "c10valid_test_eval_time_s": "test-per-time",
}
_FROM_C = {
    "c10valid_valid_acc_12ep": "cifar10-val",
    "c10_test_acc_12ep": "cifar10-test",
    "c100_valid_acc_12ep": "cifar100-val",
    "c100_test_acc_12ep": "cifar100-test",
    "in16_valid_acc_12ep": "imagenet-val",
    "in16_test_acc_12ep": "imagenet-test",
}
_OP_COLUMNS = ("op_1from0", "op_2from0", "op_2from1", "op_3from0", "op_3from1", "op_3from2")
NB201_HEADER = (
    "arch_index",
    "arch_str",
    *_OP_COLUMNS,
    "iso_class",
    *_FROM_B,
    *_FROM_A,
    *_FROM_C,
)
"""The 28 columns of the published table, in its order."""
DECIMALS = 6


class SourceError(ValueError):
    """A source file that does not hold what the join expects."""


class UnsafeFrameError(pickle.UnpicklingError):
    """A pickle asked for something other than the pandas and numpy pieces of a ``DataFrame``."""


class _Source(NamedTuple):
    """One source, normalised: ``arch_index`` and ``arch_str`` per row, and numeric columns."""

    label: str
    index: np.ndarray
    arch: Sequence[str]
    columns: Mapping[str, Any]


# --------------------------------------------------------------------------- the pickle of C
def _numpy_globals() -> dict[tuple[str, str], Any]:
    # The pinned pickle was written by numpy 1.x, whose pickles name ``numpy.core``; numpy 2 moved
    # it to ``numpy._core`` (importing the old path warns). Both names map to the object that
    # exists here, so the unpickler never imports a module a pickle names.
    try:
        from numpy._core.multiarray import _reconstruct
        from numpy._core.numeric import _frombuffer
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    return {
        **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
        **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("builtins", "slice"): slice,
    }


# Global named in the pickle -> where it lives in the installed pandas. The first group is what the
# pinned file names (written by pandas 1.x); the second what pandas 2 and 3 write (the tests
# build their pickle with the installed pandas). Every entry builds data (frames, indexes, blocks,
# arrays); nothing here evaluates expressions or touches files.
_PANDAS_GLOBALS = {
    ("pandas.core.frame", "DataFrame"): ("pandas", "DataFrame"),
    ("pandas.core.internals.managers", "BlockManager"): ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.indexes.base", "_new_Index"): ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"): ("pandas", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"): ("pandas", "RangeIndex"),
    ("pandas", "DataFrame"): ("pandas", "DataFrame"),
    ("pandas", "Index"): ("pandas", "Index"),
    ("pandas", "RangeIndex"): ("pandas", "RangeIndex"),
    ("pandas", "StringDtype"): ("pandas", "StringDtype"),
    ("pandas.arrays", "StringArray"): ("pandas.arrays", "StringArray"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"): (
        "pandas._libs.arrays",
        "__pyx_unpickle_NDArrayBacked",
    ),
    ("pandas._libs.internals", "_unpickle_block"): ("pandas._libs.internals", "_unpickle_block"),
}


class FrameUnpickler(pickle.Unpickler):
    """An unpickler for a pandas ``DataFrame`` of numbers and strings, and nothing else.

    It admits numpy's array pieces, ``builtins.slice`` and the pandas classes listed in
    ``_PANDAS_GLOBALS``, each by exact module and name (``pandas.eval`` is refused like
    ``os.system``). Anything else raises :class:`UnsafeFrameError` before it can be called.
    """

    _NUMPY = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._NUMPY:
            return self._NUMPY[key]
        if key in _PANDAS_GLOBALS:
            where, attribute = _PANDAS_GLOBALS[key]
            return getattr(importlib.import_module(where), attribute)
        raise UnsafeFrameError(
            f"expected a pickle of a pandas DataFrame that references only pandas and numpy data "
            f"classes, got a reference to {module}.{name}; refusing to load it"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeFrameError(f"expected no persistent ids in a pandas pickle, got {pid!r}")


def require_pandas() -> Any:
    """The ``pandas`` module; an ImportError that says how to install it when it is missing."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "rebuilding the NAS-Bench-201 table needs pandas (its source C is a pandas pickle): "
            "pip install pandas, or fetch the finished table from a mirror "
            "(NAS_GYM_MIRROR=URL)"
        ) from None
    return pandas


def read_frame(path: str | Path) -> Any:
    """The ``DataFrame`` pickled at ``path``, read with :class:`FrameUnpickler`.

    Raises:
        UnsafeFrameError: the pickle references anything else (nothing of it is run).
        SourceError: the file is not a pickled ``DataFrame``.
    """
    pandas = require_pandas()
    try:
        with open(path, "rb") as f:
            frame = FrameUnpickler(f).load()
    except UnsafeFrameError as exc:
        raise UnsafeFrameError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise SourceError(
            f"expected {path} to be a pickled pandas DataFrame, got a file that does not unpickle "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(frame, pandas.DataFrame):
        raise SourceError(f"expected {path} to hold a pandas DataFrame, got {type(frame).__name__}")
    return frame


# --------------------------------------------------------------------------- reading the sources
def _need(label: str, have: Sequence[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in have]
    if missing:
        raise SourceError(f"expected the columns {', '.join(missing)} in {label}, got {', '.join(have)}")


def _numbers(label: str, name: str, values: Sequence[Any], dtype: type = np.float64) -> np.ndarray:
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise SourceError(f"expected numbers in column {name} of {label}: {exc}") from None


def _read_csv(path: Path, label: str) -> dict[str, list[str]]:
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"expected {label} to be a UTF-8 CSV: {exc}") from None
    if not rows:
        raise SourceError(f"expected a header line in {label}, got an empty file")
    header, body = rows[0], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise SourceError(f"expected {len(header)} fields on line {line} of {label}, got {len(row)}")
    return {name: list(values) for name, values in zip(header, zip(*body))} or dict.fromkeys(header, [])


def _source_a(path: Path) -> tuple[_Source, list[str]]:
    label = f"source A ({path.name})"
    table = _read_csv(path, label)
    _need(label, list(table), ["ArchitectureString", "UniqueString", *_FROM_A.values()])
    columns = {ours: _numbers(label, theirs, table[theirs]) for ours, theirs in _FROM_A.items()}
    # A has no index column: its rows are the cells in arch_index order.
    index = np.arange(len(table["ArchitectureString"]))
    return _Source(label, index, table["ArchitectureString"], columns), table["UniqueString"]


def _source_b(path: Path) -> _Source:
    label = f"source B ({path.name})"
    table = _read_csv(path, label)
    _need(label, list(table), ["index", "arch_str", *_FROM_B.values()])
    columns = {ours: _numbers(label, theirs, table[theirs]) for ours, theirs in _FROM_B.items()}
    return _Source(label, _numbers(label, "index", table["index"], np.int64), table["arch_str"], columns)


def _source_c(path: Path) -> _Source:
    label = f"source C ({path.name})"
    frame = read_frame(path)
    _need(label, [str(c) for c in frame.columns], ["arch", "cellstr", *_FROM_C.values()])
    columns = {ours: _numbers(label, theirs, frame[theirs].to_numpy()) for ours, theirs in _FROM_C.items()}
    arch = [str(a) for a in frame["cellstr"].to_numpy()]
    return _Source(label, _numbers(label, "arch", frame["arch"].to_numpy(), np.int64), arch, columns)


# --------------------------------------------------------------------------- the join
def _rows_by_index(source: _Source, count: int) -> np.ndarray:
    """Row of ``source`` for each arch_index ``0..count-1``; refuses gaps and duplicates."""
    if sorted(source.index.tolist()) != list(range(count)):
        raise SourceError(
            f"expected {source.label} to have each arch_index 0..{count - 1} once, like source A, "
            f"got {len(source.index)} rows with indices {source.index.min(initial=0)}.."
            f"{source.index.max(initial=0)}"
        )
    order = np.empty(count, dtype=np.int64)
    order[source.index] = np.arange(count)
    return order


def _iso_classes(unique: Sequence[str]) -> list[int]:
    """Smallest arch_index with the same canonical unique string, per row."""
    first: dict[str, int] = {}
    return [first.setdefault(text, i) for i, text in enumerate(unique)]


def join_nb201(a: str | Path, b: str | Path, c: str | Path) -> bytes:
    """The published NAS-Bench-201 table (UTF-8 CSV bytes) joined from the sources A, B and C.

    Raises :class:`SourceError` when a source lacks a column, the sources do not cover the
    same arch indices, or they disagree on an architecture string.
    """
    source_a, unique = _source_a(Path(a))
    count = len(source_a.index)
    sources = [source_a, _source_b(Path(b)), _source_c(Path(c))]
    orders = [_rows_by_index(source, count) for source in sources]
    space = NB201Space()
    codes: list[list[int]] = []
    for i, arch in enumerate(source_a.arch):
        for source, order in zip(sources[1:], orders[1:]):
            if source.arch[order[i]] != arch:
                raise SourceError(
                    f"expected the same arch_str for arch_index {i} in all sources, got {arch!r} in "
                    f"{source_a.label} and {source.arch[order[i]]!r} in {source.label}"
                )
        try:
            codes.append(list(space.parse(arch)))
        except InvalidArchitectureError as exc:
            raise SourceError(f"expected a NAS-Bench-201 arch_str for arch_index {i}: {exc}") from None

    # Columns by published name, each in arch_index order, rounded once for the whole column.
    values = {
        name: np.round(np.asarray(column)[order], DECIMALS)
        for source, order in zip(sources, orders)
        for name, column in source.columns.items()
    }
    iso = _iso_classes(unique)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NB201_HEADER)
    numeric = NB201_HEADER[len(_OP_COLUMNS) + 3 :]
    for i in range(count):
        writer.writerow(
            [i, source_a.arch[i], *codes[i], iso[i], *(f"{values[name][i]:.{DECIMALS}f}" for name in numeric)]
        )
    return out.getvalue().encode("utf-8")
