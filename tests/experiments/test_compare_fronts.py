"""Comparisons and searches with vector rewards (``objectives=``): each run's front in
``fronts.csv``, hypervolume and IGD against the exact front of the table in ``results.csv`` and
``summary.md``, the hypervolume plot; ``nas-gym search --objectives`` writes ``front.csv`` and
``pareto.png``."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401
from nas_gym.evaluation.pareto import dominates
from nas_gym.experiments.cli import main
from nas_gym.experiments.compare import run_compare
from nas_gym.experiments.fronts import (
    REFERENCE,
    exact_front,
    front_of,
    hypervolume_curve,
    make_scale,
    run_figures,
)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def nb201_compare(data_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare")
    run_compare(
        "NASBench201-v0",
        ["random", "mo-evolution"],
        seeds=2,
        out=out,
        episodes=40,
        env_kwargs={"objectives": ["accuracy", "params"], "data_dir": str(data_dir)},
        executor="serial",
        agent_kwargs={"mo-evolution": {"population_size": 10, "sample_size": 3}},
    )
    return out


def test_the_exact_front_of_nb201_is_the_brute_force_one(data_dir: Path) -> None:
    env = gym.make("NASBench201-v0", data_dir=data_dir, objectives=("accuracy", "params"))
    front, points = exact_front(env)
    assert len(points) == 15_625
    # The most accurate cell (13714) ends it; the cheapest end is the best cell without convolutions.
    assert front[:, 0].max() == pytest.approx(0.84892) and front[:, 1].max() == pytest.approx(-0.073306)
    sample = points[np.random.default_rng(0).choice(len(points), 400, replace=False)]
    assert not any(dominates(p, f) for p in sample for f in front)
    # No table, no exact front: the seed space is not enumerated.
    assert exact_front(gym.make("NASCifar-v0", data_dir=data_dir, budget="smoke")) is None


def test_compare_writes_fronts_and_measures_them(nb201_compare: Path) -> None:
    rows = _read(nb201_compare / "results.csv")
    assert len(rows) == 4
    for row in rows:
        ratio = float(row["hypervolume_ratio"])
        assert 0.3 < ratio <= 1.0 and float(row["igd"]) > 0 and int(row["front_size"]) >= 1
        assert float(row["hypervolume_ratio_space"]) >= ratio  # the looser scale
        assert 0.0 < float(row["best_reward"]) <= 1.0  # the accuracy component
    fronts = _read(nb201_compare / "fronts.csv")
    assert list(fronts[0]) == ["agent", "seed", "arch", "accuracy", "params"]
    for agent, seed in {(f["agent"], f["seed"]) for f in fronts}:
        points = [
            (float(f["accuracy"]), -int(f["params"]))
            for f in fronts
            if (f["agent"], f["seed"]) == (agent, seed)
        ]
        assert not any(dominates(a, b) for a in points for b in points)
    assert len({(f["agent"], f["seed"]) for f in fronts}) == 4
    summary = (nb201_compare / "summary.md").read_text()
    assert "## Fronts" in summary and f"reference point is {REFERENCE}" in summary
    assert "| mo-evolution | 2 |" in summary.split("## Fronts")[1]
    assert (nb201_compare / "hypervolume.png").stat().st_size > 10_000


def test_hypervolume_curves_rise_to_the_run_s_figure(data_dir: Path) -> None:
    from agents import make_agent

    env = gym.make(
        "NASBench201-v0", data_dir=data_dir, objectives=("accuracy", "params"), disable_env_checker=True
    )
    history = make_agent("random", seed=0).search(env, 60).history
    scale = make_scale([history], env)
    curve = hypervolume_curve(history, scale)
    values = [v for _, v in curve]
    assert [n for n, _ in curve] == list(range(1, 61)) and values == sorted(values)
    assert values[-1] == pytest.approx(run_figures(history, scale)["hypervolume_ratio"])
    assert scale.exact and scale.front_hypervolume > 0
    assert len(front_of(history)) == run_figures(history, scale)["front_size"]
    # The exact front itself scores 1 and an IGD of 0.
    assert scale.hypervolume(scale.front) / scale.front_hypervolume == 1.0 and scale.igd(scale.front) == 0.0


def test_each_macro_seed_is_measured_against_its_own_front(data_dir: Path, tmp_path: Path) -> None:
    # NAS-Bench-Macro's reward is one of three runs, chosen by the seed: one exact front per seed.
    kwargs = {"objectives": ["accuracy", "params"], "data_dir": str(data_dir)}
    results = run_compare(
        "NASBenchMacro-v0",
        ["random"],
        seeds=2,
        out=tmp_path,
        episodes=80,
        env_kwargs=kwargs,
        executor="serial",
    )
    scales = [make_scale([], gym.make("NASBenchMacro-v0", eval_seed=seed, **kwargs)) for seed in (0, 1)]
    assert not np.array_equal(scales[0].front, scales[1].front)
    for seed, result in enumerate(results):
        own = run_figures(result.history, scales[seed])["hypervolume_ratio"]
        other = run_figures(result.history, scales[1 - seed])["hypervolume_ratio"]
        assert result.row["hypervolume_ratio"] == pytest.approx(own) and own != pytest.approx(other)
    assert (
        "each seed is measured against the exact front of its own rewards"
        in (tmp_path / "summary.md").read_text()
    )


def test_search_with_objectives_writes_its_front(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NAS_GYM_DATA", str(data_dir))
    out = tmp_path / "run"
    code = main(
        [
            "search",
            "--env",
            "NASBench201-v0",
            "--agent",
            "mo-evolution",
            "--episodes",
            "30",
            "--objectives",
            "accuracy,params,flops",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    front = _read(out / "front.csv")
    assert list(front[0]) == ["arch", "accuracy", "params", "flops"]
    history = [line for line in (out / "history.jsonl").read_text().splitlines() if line]
    assert 1 <= len(front) <= len(history) == 30
    assert all(int(f["flops"]) > 0 for f in front)
    assert (out / "pareto.png").stat().st_size > 10_000
    capsys.readouterr()


def test_fronts_need_vector_rewards() -> None:
    with pytest.raises(ValueError, match="expected at least one evaluation with a finite vector reward"):
        make_scale([[{"arch": "a", "reward": [float("-inf"), -1.0]}]], None)
    # A repeated architecture counts once; a failure of unknown cost is not on the front.
    history = [
        {"arch": "a", "reward": [0.5, -1.0]},
        {"arch": "a", "reward": [0.5, -1.0]},
        {"arch": "b", "reward": [0.9, float("-inf")]},
        {"arch": "c", "reward": [0.6, -2.0]},
    ]
    assert front_of(history) == [0, 3]
