"""The benchmarks that the docs quote run, in their quick modes."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_fidelity_quick_mode_trains_resumes_and_reports(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    main = runpy.run_path(str(BENCHMARKS / "fidelity.py"))["main"]
    out, doc = tmp_path / "store", tmp_path / "doc" / "fidelity.md"
    assert main(["run", "--quick", "--out", str(out), "--data-dir", str(cifar_dir)]) == 0
    first = capsys.readouterr().out
    assert "[8/8] tiny seed=1" in first and "(stored)" not in first
    # A second run trains nothing: every result comes from the store.
    assert main(["run", "--quick", "--out", str(out), "--data-dir", str(cifar_dir)]) == 0
    assert capsys.readouterr().out.count("(stored)") == 8
    assert (
        main(["report", "--quick", "--out", str(out), "--doc", str(doc), "--data-dir", str(cifar_dir)]) == 0
    )
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| tiny") or line.startswith("| table")]
    assert len(rows) == 2 and "| 5 |" in rows[0]
    # The table's reference row on the same five cells, computed independently.
    from nas_gym.backends.tables.nb201 import load_nb201_table
    from nas_gym.experiments.ranking import rank_agreement

    fidelity = runpy.run_path(str(BENCHMARKS / "fidelity.py"))
    table = load_nb201_table(cifar_dir)
    cells = fidelity["sample_cells"](table, 5, 0)
    expected = rank_agreement(
        table.columns["c10valid_valid_acc_12ep"][cells], table.columns["c10valid_valid_acc_200ep"][cells]
    )
    assert f"| {expected.spearman.text()} |" in rows[1]
    assert (doc.parent / "fidelity" / "tiny.png").stat().st_size > 1000


def test_cell_sample_is_stratified_and_non_degenerate(data_dir: Path) -> None:
    fidelity = runpy.run_path(str(BENCHMARKS / "fidelity.py"))
    from nas_gym.backends.tables.nb201 import load_nb201_table

    table = load_nb201_table(data_dir)
    cells = fidelity["sample_cells"](table, 50, 0)
    valid = table.columns["c10valid_valid_acc_200ep"][cells]
    assert len(set(cells)) == 50 and (table.columns["c10_test_acc_200ep"][cells] > 10.5).all()
    assert (valid[1:] >= valid[:-1]).all()  # one per stratum, strata in accuracy order
    assert cells == fidelity["sample_cells"](table, 50, 0) != fidelity["sample_cells"](table, 50, 1)
