"""The zero-cost proxies: their definitions on networks whose scores are known in closed form, the
evaluator on real CIFAR-10 minibatches (determinism, training part only, metrics, fingerprint,
fidelities) and the zero-cost form of the metrics dict."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from nas_gym.backends.cifar import data
from nas_gym.backends.cifar.trainer import CifarTrainer
from nas_gym.backends.cifar.training import CIFAR10_MEAN, CIFAR10_STD, architecture_cost
from nas_gym.backends.cifar.zero_cost import (
    JACOB_COV_K,
    PROXIES,
    ZERO_COST_VERSION,
    ZeroCostEvaluator,
    jacob_cov,
    naswot,
    proxy_minibatch,
    synflow,
)
from nas_gym.evaluation.metrics import EvaluatorOutputError, normalize_metrics
from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.spaces import make_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
DISCONNECTED = "|none~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|"
"""Every edge out of the input node is ``none``: the network's output ignores its input."""
ARCHS = {
    "seed": "k3-sigmoid-max|k5-relu-avg",
    "nb201": CELL,
    "macro": "10000000",
}
SMALL_BATCH = 4
"""The smallest batch whose kernels still compare several images."""


def _scorer(cifar_dir, space: str = "nb201", **kwargs) -> ZeroCostEvaluator:
    kwargs = {"proxy": "synflow", "batch_size": SMALL_BATCH, "device": "cpu", **kwargs}
    return ZeroCostEvaluator(space, data_dir=cifar_dir, **kwargs)


# ---------------------------------------------------------------------------------------- definitions
def test_synflow_is_twice_the_path_sum_of_a_two_layer_linear_network():
    """With every weight made positive and the input all ones, R = 1^T |W2| |W1| 1, and each
    layer's sum of |theta * dR/dtheta| is R itself; the BatchNorm between the layers is skipped
    (normalising would change R), and the signs of the weights do not matter."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 3, bias=False))
    w1, w2 = (model[0].weight.detach().abs().double(), model[2].weight.detach().abs().double())
    path_sum = float(torch.ones(3, dtype=torch.float64) @ w2 @ w1 @ torch.ones(5, dtype=torch.float64))
    assert synflow(model, torch.zeros(2, 5), torch.zeros(2)) == pytest.approx(2 * path_sum, rel=1e-12)


def test_synflow_is_computed_in_float64():
    """40 layers of weights 10 multiply to 1e40 paths: beyond float32 (3.4e38), fine in float64."""
    layers = [nn.Linear(1, 1, bias=False) for _ in range(40)]
    for layer in layers:
        nn.init.constant_(layer.weight, -10.0)
    score = synflow(nn.Sequential(*layers), torch.zeros(1, 1), torch.zeros(1))
    assert math.isfinite(score) and score == pytest.approx(40 * 1e40, rel=1e-9)


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    images = torch.tensor([[1.0, -1.0, 2.0], [1.0, 1.0, -2.0], [-1.0, -1.0, 2.0]])
    codes = (images > 0).double().numpy()
    agreements = 3 - np.abs(codes[:, None, :] - codes[None, :, :]).sum(-1)  # units - Hamming distance
    expected = np.linalg.slogdet(agreements)[1]
    assert naswot(nn.Sequential(nn.ReLU()), images, torch.zeros(3)) == pytest.approx(expected)
    # A sigmoid unit counts as active above one half (a positive input), the split a ReLU makes.
    assert naswot(nn.Sequential(nn.Sigmoid()), images, torch.zeros(3)) == pytest.approx(expected)
    # Two ReLUs see the same codes twice: the kernel doubles, log det grows by n log 2.
    twice = naswot(nn.Sequential(nn.ReLU(), nn.ReLU()), images, torch.zeros(3))
    assert twice == pytest.approx(expected + 3 * math.log(2))


def test_jacob_cov_of_an_input_independent_jacobian_is_the_worst_score():
    """A linear map has the same Jacobian for every image: perfectly correlated, eigenvalues (n, 0,
    ..., 0); a ReLU network's Jacobians differ and score higher."""
    torch.manual_seed(0)
    n = 6
    images = torch.randn(n, 8)
    worst = -(math.log(n + JACOB_COV_K) + 1 / (n + JACOB_COV_K)) - (n - 1) * (
        math.log(JACOB_COV_K) + 1 / JACOB_COV_K
    )
    assert jacob_cov(nn.Linear(8, 3), images, torch.zeros(n)) == pytest.approx(worst, rel=1e-6)
    relu = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    assert jacob_cov(relu, images, torch.zeros(n)) > worst / 1000


# ---------------------------------------------------------------------------------------- the evaluator
@pytest.mark.parametrize("space", sorted(ARCHS))
@pytest.mark.parametrize("proxy", list(PROXIES))
def test_every_proxy_scores_every_space(cifar_dir, space, proxy):
    metrics = _scorer(cifar_dir, space, proxy=proxy, batch_size=2)(ARCHS[space])
    assert metrics["status"] == "ok" and math.isfinite(metrics["score"]), metrics
    assert metrics["accuracy"] is None and metrics["proxy"] == metrics["budget"] == proxy
    assert (metrics["params"], metrics["flops"]) == architecture_cost(make_space(space), ARCHS[space])
    assert metrics["train_seconds"] > 0


def test_scores_are_deterministic_and_leave_rng_and_threads_alone(cifar_dir):
    scorer = _scorer(cifar_dir, proxy="naswot")
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    first = scorer(CELL)["score"]
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads
    assert scorer(CELL)["score"] == first
    assert pickle.loads(pickle.dumps(scorer))(CELL)["score"] == first
    # The seed picks the weights and the minibatch.
    assert _scorer(cifar_dir, proxy="naswot", seed=1)(CELL)["score"] != first


def test_minibatch_comes_from_the_training_part_only(cifar_dir):
    images, labels = data.load_cifar10(cifar_dir, split="train")
    train, val = data.train_val_split()
    batch, batch_labels = proxy_minibatch(8, 3, torch.device("cpu"), cifar_dir)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    pixels = ((batch * std + mean) * 255).round().to(torch.uint8).numpy()
    where = {images[i].tobytes(): int(i) for i in np.concatenate([train, val])}
    rows = [where[p.tobytes()] for p in pixels]
    assert set(rows) <= set(train.tolist()) and not set(rows) & set(val.tolist())
    assert len(set(rows)) == 8 and batch_labels.tolist() == labels[rows].tolist()


def test_a_cell_whose_output_ignores_its_input_has_no_naswot_score(cifar_dir):
    metrics = _scorer(cifar_dir, proxy="naswot")(DISCONNECTED)
    assert metrics["status"] == "diverged" and metrics["score"] is None
    assert "naswot score is -inf" in metrics["error"]
    assert _scorer(cifar_dir)(DISCONNECTED)["score"] == 0.0  # synflow: no path at all
    assert (
        EvaluationRunner.run_evaluator(_scorer(cifar_dir, proxy="naswot"), DISCONNECTED)["status"]
        == "diverged"
    )


def test_fingerprint_names_version_proxy_space_batch_seed_and_threads(cifar_dir):
    scorer = _scorer(cifar_dir, batch_size=8, seed=3)
    assert scorer.fingerprint == (
        f"cifar10-zero-cost/v{ZERO_COST_VERSION} proxy=synflow space={scorer.space!r} batch=8 seed=3 "
        "device=cpu threads=1"
    )
    others = {
        _scorer(cifar_dir, batch_size=8, seed=3, proxy="naswot").fingerprint,
        _scorer(cifar_dir, batch_size=16, seed=3).fingerprint,
        _scorer(cifar_dir, batch_size=8, seed=4).fingerprint,
        _scorer(cifar_dir, "seed", batch_size=8, seed=3).fingerprint,
        scorer.with_threads(2).fingerprint,
    }
    assert len(others) == 5 and scorer.fingerprint not in others


def test_with_fidelity_switches_proxies_and_trains_under_a_budget(cifar_dir):
    scorer = _scorer(cifar_dir, seed=2, threads=1)
    naswot_scorer = scorer.with_fidelity("naswot")
    assert isinstance(naswot_scorer, ZeroCostEvaluator) and naswot_scorer.proxy == "naswot"
    assert scorer.proxy == "synflow" and naswot_scorer.fidelity == "naswot"
    trainer = scorer.with_fidelity({"base": "smoke", "epochs": 2})
    assert isinstance(trainer, CifarTrainer)
    assert (trainer.space, trainer.seed, trainer.device, trainer.threads) == (scorer.space, 2, "cpu", 1)
    assert trainer.fidelity == {"base": "smoke", "epochs": 2}
    assert scorer.fidelities[: len(PROXIES)] == tuple(PROXIES)
    assert scorer.fidelities[len(PROXIES) :] == CifarTrainer.fidelities
    with pytest.raises(ValueError, match=r"expected a budget in .*, got 'synflw'"):
        scorer.with_fidelity("synflw")


def test_arguments_are_checked(cifar_dir, tmp_path):
    with pytest.raises(
        ValueError, match=r"expected a zero-cost proxy in \[.*\], got 'synflw' \(did you mean 'synflow'\?\)"
    ):
        _scorer(cifar_dir, proxy="synflw")
    with pytest.raises(ValueError, match=r"expected batch_size as an int >= 2, got 1"):
        _scorer(cifar_dir, batch_size=1)
    with pytest.raises(ValueError, match=r"expected threads as a positive int or None, got 0"):
        _scorer(cifar_dir, threads=0)
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py"):
        ZeroCostEvaluator("nb201", data_dir=tmp_path)


# ---------------------------------------------------------------------------------------- metrics
def test_a_zero_cost_result_has_no_accuracy_and_needs_a_finite_score():
    metrics = normalize_metrics({"accuracy": None, "score": 12.5, "params": 3.0}, 0.25)
    assert metrics == {
        "accuracy": None,
        "score": 12.5,
        "params": 3,
        "flops": None,
        "train_seconds": 0.25,
        "status": "ok",
    }
    with pytest.raises(
        EvaluatorOutputError, match=r"expected 'score' as a finite number when 'accuracy' is None"
    ):
        normalize_metrics({"accuracy": None, "score": float("nan")}, 0.1)
    with pytest.raises(EvaluatorOutputError, match=r"expected 'accuracy' as a number, got None"):
        normalize_metrics({"accuracy": None}, 0.1)
    failed = normalize_metrics({"accuracy": None, "score": None, "status": "diverged"}, 0.1)
    assert failed["status"] == "diverged" and failed["score"] is None
