"""The MnasNet objective: accuracy weighted by a cost relative to a target."""

from __future__ import annotations

import pickle

import pytest

from nas_gym.evaluation.objectives import MnasObjective, make_objective, mnas_objective


def test_mnas_objective_values() -> None:
    objective = mnas_objective("params", 1_000_000)
    assert objective({"accuracy": 0.9, "params": 1_000_000}) == pytest.approx(0.9)
    assert objective({"accuracy": 0.9, "params": 2_000_000}) == pytest.approx(0.9 * 2**-0.07)
    assert objective({"accuracy": 0.9, "params": 500_000}) == pytest.approx(0.9 * 0.5**-0.07)
    costs = [1e5, 5e5, 1e6, 3e6]
    rewards = [objective({"accuracy": 0.9, "params": c}) for c in costs]
    assert rewards == sorted(rewards, reverse=True)
    flops = make_objective("mnas-flops")
    assert flops({"accuracy": 0.5, "flops": 100_000_000, "params": None}) == pytest.approx(0.5 * 2**-0.07)
    hard = mnas_objective("flops", 10, w=-1.0)
    assert hard({"accuracy": 0.8, "flops": 20}) == pytest.approx(0.4)
    assert pickle.loads(pickle.dumps(objective)) == objective == MnasObjective("params", 1e6, -0.07)


def test_mnas_objective_errors() -> None:
    with pytest.raises(ValueError, match=r"expected cost in \('params', 'flops'\), got 'latency'"):
        mnas_objective("latency", 1.0)
    with pytest.raises(ValueError, match="expected target as a positive number, got 0"):
        mnas_objective("params", 0)
    with pytest.raises(ValueError, match="expected w as a finite number"):
        mnas_objective("params", 1e6, w=float("nan"))
    objective = make_objective("mnas-params")
    with pytest.raises(ValueError, match=r"expected metrics\['params'\] as a positive number .* got None"):
        objective({"accuracy": 0.9, "params": None})
    with pytest.raises(ValueError, match=r"expected metrics\['params'\] as a positive number, got 0"):
        objective({"accuracy": 0.9, "params": 0})
