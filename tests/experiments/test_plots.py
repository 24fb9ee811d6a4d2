"""Plots of a search: the Pareto plot draws the non-dominated first evaluations that have a cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas_gym.experiments.plots import has_cost, plot_pareto


def _record(arch: str, accuracy: float, params: int | None, status: str = "ok") -> dict:
    return {"arch": arch, "accuracy": accuracy, "params": params, "flops": None, "status": status}


def test_has_cost_tells_whether_plot_pareto_has_points(tmp_path: Path) -> None:
    with_params = [
        _record("a", 0.5, None),
        _record("b", 0.6, 2000, status="failed"),
        _record("b", 0.7, 2000),
        _record("b", 0.9, 2000),  # a repeat of "b": not shown again
        _record("c", 0.8, 3000),
    ]
    assert has_cost(with_params) and not has_cost(with_params, cost="flops")
    assert plot_pareto(with_params, str(tmp_path / "front.png")) == [2, 4]
    assert (tmp_path / "front.png").stat().st_size > 0
    for history in ([], with_params[:2], [_record("a", 0.5, None)] * 3):
        assert not has_cost(history)
        with pytest.raises(ValueError, match="expected history entries with 'params', got none"):
            plot_pareto(history, str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()
