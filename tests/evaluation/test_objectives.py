"""The MnasNet objective: accuracy weighted by a cost relative to a target."""

from __future__ import annotations

import pickle

import numpy as np
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


# ---------------------------------------------------------------------------------------- vectors
def test_vector_objective_components_are_maximised() -> None:
    from nas_gym.evaluation.objectives import make_vector_objective

    objective = make_vector_objective(("accuracy", "params", "flops"))
    metrics = {"accuracy": 0.8, "params": 1_500_000, "flops": 220_000_000, "status": "ok"}
    assert objective(metrics).tolist() == pytest.approx([0.8, -1.5, -220.0])
    # A zero-cost budget trains nothing: its score stands for the accuracy, as in the scalar reward.
    assert make_vector_objective("accuracy")({"accuracy": None, "score": 3.5}).tolist() == [3.5]
    # A failure: its failure reward, its cost where known, -inf where not (never cheap).
    failed = objective({"accuracy": 0.0, "params": 2_000_000, "flops": None}, failure_reward=-1.0)
    assert failed.tolist() == [-1.0, -2.0, float("-inf")]
    assert pickle.loads(pickle.dumps(objective)) == objective


def test_vector_objective_bounds() -> None:
    from nas_gym.evaluation.objectives import make_vector_objective

    objective = make_vector_objective(("accuracy", "params"))
    low, high = objective.bounds()
    assert low.tolist() == [0.0, float("-inf")] and high.tolist() == [1.0, 0.0]
    ranges = {"params": (73_306.0, 1_531_546.0)}
    low, high = objective.bounds(ranges.get, failure_reward=-0.5)
    assert low[0] == -0.5 and high.tolist() == [1.0, 0.0]
    # float32 holds the bound below the float64 reward of the largest network: the Box contains it.
    assert low.dtype == np.float32 and low[1] < -1.531546 and low[1] > -1.5316


def test_vector_objective_errors() -> None:
    from nas_gym.evaluation.objectives import VectorObjective, make_vector_objective

    with pytest.raises(
        ValueError, match=r"expected objectives among .* got 'param' \(did you mean 'params'\?\)"
    ):
        make_vector_objective(("accuracy", "param"))
    with pytest.raises(ValueError, match="expected distinct objectives, got"):
        make_vector_objective(("accuracy", "accuracy"))
    with pytest.raises(ValueError, match="expected at least one objective"):
        VectorObjective(())
    with pytest.raises(TypeError, match="expected objectives as a tuple of names"):
        make_vector_objective(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected metrics\['params'\] as a number .* got None"):
        make_vector_objective(("accuracy", "params"))({"accuracy": 0.5, "params": None})
