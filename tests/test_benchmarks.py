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


def test_gpu_check_dry_run_runs_every_step_on_the_cpu(tmp_path: Path) -> None:
    """``benchmarks/gpu_check.sh`` is run on a GPU machine with no dataset and no second try; its
    dry run takes the same steps on the CPU at tiny sizes, so a broken step shows here first."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = summary["steps"]
    assert list(steps) == ["environment", "smoke", "gpu-budget", "determinism", "oom", "parallel"]
    assert {found["status"] for found in steps.values()} <= {"ok", "skipped"}, steps
    assert steps["oom"]["status_of_absurd_batch"] == "oom" and steps["oom"]["next_evaluation"] == "ok"
    assert len(steps["gpu-budget"]["rows"]) == 3
    assert all(row["same"] for row in steps["determinism"]["rows"] if row["speed"] == "deterministic")
    assert summary["dry_run"] and "| oom | ok |" in (tmp_path / "gpu_check.md").read_text()


@pytest.mark.slow
def test_zero_cost_quick_mode_scores_resumes_and_reports(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    zero_cost = runpy.run_path(str(BENCHMARKS / "zero_cost.py"))
    main, out, doc = zero_cost["main"], tmp_path / "store", tmp_path / "zero_cost.md"
    arguments = ["--quick", "--out", str(out), "--data-dir", str(cifar_dir)]
    assert main(["run", *arguments]) == 0
    first = capsys.readouterr().out
    assert "[grad_norm 6/6]" in first and "(stored)" not in first
    assert main(["run", *arguments]) == 0  # everything comes from the store now
    assert capsys.readouterr().out.count("(stored)") == 5
    assert main(["report", *arguments, "--doc", str(doc)]) == 0
    rows = [line for line in doc.read_text().splitlines() if line.startswith("| `")]
    proxies = list(zero_cost["PROXIES"])
    assert [row.split("`")[1] for row in rows[: len(proxies)]] == proxies
    # synflow's Spearman against the CIFAR-10 test accuracy of the six cells, computed here.
    from nas_gym.backends.tables.nb201 import load_nb201_table
    from nas_gym.evaluation.store import EvaluationStore
    from nas_gym.experiments.ranking import rank_agreement

    plan, table = zero_cost["QUICK"], load_nb201_table(cifar_dir)
    cells = zero_cost["sample_cells"](table, plan.cells, plan.sample_seed)
    fingerprint = zero_cost["evaluator"]("synflow", plan, str(cifar_dir)).fingerprint
    store = EvaluationStore(out / "scores.sqlite")
    scores = [store.get("nb201", table.arch_strs[c], fingerprint)["score"] for c in cells]
    expected = rank_agreement(scores, table.columns["c10_test_acc_200ep"][cells], resamples=plan.resamples)
    assert f"| 6 | {expected.spearman.text()} / 0.74" in rows[0]
