"""The statistics of a comparison, as ``summary.md``: per agent the mean ± std, the standard error,
a Welch test against regularized evolution, the share of runs that found the reward-optimal
architecture, and the transfer of the selected cells to the other datasets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nas_gym.experiments.compare import RunResult

REFERENCE_AGENT = "evolution"
"""The agent every other one is tested against (Welch's t-test), when it is in the comparison."""


def _finite(values: Sequence[Any], scale: float = 1.0) -> np.ndarray:
    clean = [float(v) * scale for v in values if v is not None and math.isfinite(float(v))]
    return np.asarray(clean, dtype=np.float64)


def mean_std(values: Sequence[Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std"`` (sample std) of the finite values, ``"n/a"`` for none."""
    clean = _finite(values, scale)
    if clean.size == 0:
        return "n/a"
    std = float(np.std(clean, ddof=1)) if clean.size > 1 else 0.0
    return f"{clean.mean():.{digits}f} ± {std:.{digits}f}"


def standard_error(values: Sequence[Any], scale: float = 1.0) -> float | None:
    """The standard error of the mean of the finite values (``None`` for fewer than two)."""
    clean = _finite(values, scale)
    return float(np.std(clean, ddof=1) / math.sqrt(clean.size)) if clean.size > 1 else None


def welch(a: Sequence[Any], b: Sequence[Any]) -> tuple[float, float] | None:
    """Welch's t-test of ``mean(a) != mean(b)`` (unequal variances): ``(t, two-sided p)``, or
    ``None`` with fewer than two values on a side or no variance at all."""
    from scipy import stats

    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2 or (np.var(x) == 0 and np.var(y) == 0):
        return None
    result = stats.ttest_ind(x, y, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def _cell(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_markdown(
    env: str,
    agents: Sequence[str],
    results: Sequence[RunResult],
    episodes: int | None,
    budget_seconds: float | None,
) -> str:
    """The Markdown summary of a comparison (see the module docstring)."""
    budget = f"{episodes} episodes" if episodes is not None else f"{budget_seconds:g} simulated seconds"
    rows = {agent: [r.row for r in results if r.row["agent"] == agent] for agent in agents}
    reference = rows.get(REFERENCE_AGENT)
    lines = [
        f"# {env}: {', '.join(agents)}",
        "",
        f"Budget per run: {budget}. Mean ± std over seeds; accuracies in percent; s.e. = standard error of "
        "the mean test accuracy; regret = the table's optimum minus the run's value (percentage points); "
        f"Welch = two-sided p of Welch's t-test of the test accuracy against {REFERENCE_AGENT!r}; "
        "found = runs whose selected architecture is the reward-optimal one.",
        "",
        "| agent | runs | episodes | best reward (val) | test accuracy | s.e. | Welch p | found | "
        "regret (val) | regret (test) | simulated s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for agent, group in rows.items():
        tests = [r["test_accuracy"] for r in group]
        test = (
            welch(tests, [r["test_accuracy"] for r in reference])
            if reference and agent != REFERENCE_AGENT
            else None
        )
        found = [r["found_optimum"] for r in group if r.get("found_optimum") is not None]
        lines.append(
            f"| {agent} | {len(group)} | {mean_std([r['episodes'] for r in group], digits=1)} "
            f"| {mean_std([r['best_reward'] for r in group], 100)} "
            f"| {mean_std(tests, 100)} | {_cell(standard_error(tests, 100))} "
            f"| {'—' if test is None else f'{test[1]:.3g}'} "
            f"| {f'{sum(found)}/{len(found)}' if found else 'n/a'} "
            f"| {mean_std([r['regret_reward'] for r in group], 100)} "
            f"| {mean_std([r['regret_test'] for r in group], 100)} "
            f"| {mean_std([r['simulated_seconds'] for r in group], digits=0)} "
            f"| {mean_std([r['wall_seconds'] for r in group])} |"
        )
    lines += _transfer_section(rows)
    failed = [r.row for r in results if r.row.get("error")]
    if failed:
        lines += [
            "",
            f"{len(failed)} run(s) failed: "
            + "; ".join(f"{r['agent']} seed {r['seed']}: {r['error']}" for r in failed),
        ]
    return "\n".join(lines) + "\n"


def _transfer_section(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    from nas_gym.experiments.compare import TRANSFER_PREFIX

    columns = sorted(
        {k for group in rows.values() for r in group for k in r if k.startswith(TRANSFER_PREFIX)}
    )
    if not columns:
        return []
    datasets = [c.removeprefix(TRANSFER_PREFIX) for c in columns]
    lines = [
        "",
        "## Transfer",
        "",
        "The 200-epoch test accuracy of each run's selected cell on every dataset of the table (mean ± std, "
        "percent): the cell was chosen on one dataset's validation reward only.",
        "",
        "| agent | " + " | ".join(datasets) + " |",
        "|---|" + "---|" * len(datasets),
    ]
    for agent, group in rows.items():
        lines.append(
            f"| {agent} | " + " | ".join(mean_std([r.get(c) for r in group], 100) for c in columns) + " |"
        )
    return lines
