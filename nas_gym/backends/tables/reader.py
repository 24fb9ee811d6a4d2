"""The one reader behind every benchmark table: file access with errors that name the data
folder, a row index by canonical architecture string, and a per-process cache.

Each table file is read once per process: :func:`cached_table` keeps the parsed table keyed by
its kind and resolved path, so every copy of an env (and every evaluator) in a process shares one
read-only table. A lookup is a dict access by the canonical string plus a few list indexings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np

from nas_gym.core.config import DATA_ENV_VAR
from nas_gym.spaces.base import InvalidArchitectureError


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


def where_hint(relative: Path) -> str:
    return f"Set {DATA_ENV_VAR} (or pass data_dir=) to the folder that holds {relative.as_posix()}."


def read_bytes(path: Path, relative: Path, expected: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fetch = "nb201" if relative.parts[0] == "nasbench201" else "macro"
        raise TableNotFoundError(
            f"benchmark table not found: {path}. Expected {expected}. {where_hint(relative)} "
            f"Or fetch it with `nas-gym download {fetch}`."
        ) from None
    except IsADirectoryError:
        raise TableError(f"expected a file at {path}, got a directory. {where_hint(relative)}") from None


class RowIndex:
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


# ---------------------------------------------------------------------------- cache
class _Readable(Protocol):
    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Any: ...


_Table = TypeVar("_Table", bound=_Readable)
_CACHE: dict[tuple[str, Path], Any] = {}
_CACHE_LOCK = threading.Lock()


def cached_table(kind: type[_Table], path: Path) -> _Table:
    """``kind.from_file(path)``, read on the first call of the process only."""
    key = (kind.__name__, path.resolve())
    with _CACHE_LOCK:
        table = _CACHE.get(key)
        if table is None:
            table = kind.from_file(path)
            _CACHE[key] = table
    return table


def clear_table_cache() -> None:
    """Forget the tables read so far (the next load reads the file again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def metric_values(key: str, options: Mapping[str, Any], owner: object) -> np.ndarray:
    """``options[key]`` as a float array, or a ``ValueError`` naming the keys of ``owner.best``."""
    if key not in options:
        raise ValueError(f"expected key in {sorted(options)} for {type(owner).__name__}.best, got {key!r}")
    return np.asarray(options[key], dtype=np.float64)
