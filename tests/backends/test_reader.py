"""The reader shared by the benchmark tables: errors that name the data folder, row lookup and
the per-process cache."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from nas_gym.backends.tables import reader
from nas_gym.backends.tables.macro import MACRO_FILE, MacroEvaluator, MacroTable
from nas_gym.backends.tables.nb201 import NB201_FILE, NB201Evaluator, NB201Table
from nas_gym.backends.tables.reader import TableError, TableNotFoundError, cached_table, clear_table_cache
from nas_gym.spaces import InvalidArchitectureError

BEST_6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("evaluator", "relative", "column"),
    [(NB201Evaluator, NB201_FILE, "c10valid_valid_acc_12ep"), (MacroEvaluator, MACRO_FILE, "test_acc")],
    ids=["nb201", "macro"],
)
def test_missing_table(tmp_path: Path, evaluator: type, relative: Path, column: str) -> None:
    with pytest.raises(
        TableNotFoundError, match=r"(?s)benchmark table not found: .*" + relative.name
    ) as caught:
        evaluator(tmp_path)
    message = str(caught.value)
    assert column in message and "NAS_GYM_DATA" in message and str(tmp_path / relative) in message
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, TableError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("kind", "relative"), [(NB201Table, NB201_FILE), (MacroTable, MACRO_FILE)])
def test_a_folder_in_place_of_a_table(tmp_path: Path, kind: type, relative: Path) -> None:
    (tmp_path / relative).mkdir(parents=True)
    with pytest.raises(
        TableError, match=r"expected a file at .*, got a directory\. Set NAS_GYM_DATA"
    ) as caught:
        kind.from_file(tmp_path / relative)
    assert not isinstance(caught.value, TableNotFoundError)


def test_unknown_architecture_is_refused(data_dir: Path) -> None:
    with pytest.raises(
        InvalidArchitectureError, match=r"expected a NAS-Bench-201 arch_str of the table .*'\|conv~0\|'"
    ):
        NB201Evaluator(data_dir)("|conv~0|")
    with pytest.raises(
        InvalidArchitectureError, match=r"expected an 8-digit NAS-Bench-Macro .*got '2221222'"
    ):
        MacroEvaluator(data_dir)("2221222")
    with pytest.raises(InvalidArchitectureError, match="got None"):
        MacroEvaluator(data_dir).table.row(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- cache
class _Counted:
    reads: list[Path] = []

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def from_file(cls, path: Path) -> _Counted:
        cls.reads.append(path)
        return cls(path)


class _OtherKind(_Counted):
    pass


def test_cached_table_reads_each_kind_and_file_once(tmp_path: Path) -> None:
    _Counted.reads = []
    (tmp_path / "sub").mkdir()
    first = cached_table(_Counted, tmp_path / "table.csv")
    assert cached_table(_Counted, tmp_path / "sub" / ".." / "table.csv") is first  # the same file
    assert len(_Counted.reads) == 1
    other = cached_table(_OtherKind, tmp_path / "table.csv")  # another kind: its own entry
    assert other is not first and len(_Counted.reads) == 2
    clear_table_cache()
    assert cached_table(_Counted, tmp_path / "table.csv") is not first
    assert len(_Counted.reads) == 3


def test_table_is_read_once_per_process(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    original = NB201Table.from_file.__func__

    def counting(cls, path):
        reads.append(path)
        return original(cls, path)

    monkeypatch.setattr(NB201Table, "from_file", classmethod(counting))
    reader.clear_table_cache()
    first = NB201Evaluator(data_dir)
    second = NB201Evaluator(data_dir, dataset="cifar100", metric="12ep")
    copy = pickle.loads(pickle.dumps(first))
    assert copy(BEST_6111)["test_accuracy"] == pytest.approx(0.9437, abs=5e-5)
    # The same file through another spelling of the folder is the same cache entry.
    NB201Evaluator(data_dir / "nasbench201" / "..")
    assert len(reads) == 1
    assert first.table is second.table is copy.table
