"""Zero-cost proxies: scores of an untrained network that rank architectures without training it.

:class:`ZeroCostEvaluator` is the evaluator of ``NASCifar-v0`` under ``budget="synflow"``,
``"naswot"``, ``"jacob_cov"``, ``"snip"`` or ``"grad_norm"``. It builds the network the space
defines (full size, 32x32 input) with the seeded weights the trainer would start from, scores it
on one fixed, seeded minibatch of the *training* part of the CIFAR-10 split (never the validation
or test images) and returns the score; nothing is trained. Measured rank correlations against the
NAS-Bench-201 table are in ``docs/zero_cost.md``.

The proxies follow the published definitions:

- ``synflow`` (Tanaka et al., NeurIPS 2020, as scored by Abdelfattah et al., ICLR 2021): every
  parameter replaced by its absolute value, BatchNorm layers skipped (identity), the network in
  float64 fed one all-ones image; the score is ``sum |theta * dR/dtheta|`` over the weights of
  every convolution and linear layer, ``R`` the sum of the logits. float64 because the products
  over depth overflow float32 on deep cells; the skipped BatchNorm would otherwise rescale each
  layer to unit variance and erase what synflow measures.
- ``naswot`` (Mellor et al., ICML 2021): for each image of the batch the binary code of which
  units of every ReLU are active (input > 0); the kernel ``K[i, j]`` = number of units on which
  images ``i`` and ``j`` agree (units minus their Hamming distance), the score
  ``log |det K|``. The ``"seed"`` space also has sigmoid layers: their units count as active
  where the input is positive (the sigmoid above one half), the same split a ReLU makes.
- ``jacob_cov`` (Mellor et al. 2020, v1, as in Abdelfattah et al.): the Jacobians of the summed
  logits with respect to each input image, their correlation matrix ``C`` with eigenvalues
  ``v``, the score ``-sum(log(v + k) + 1 / (v + k))``, ``k = 1e-5``.
- ``snip`` (Lee et al., ICLR 2019): ``sum |theta * dL/dtheta|`` over conv and linear weights, ``L``
  the cross-entropy of the batch.
- ``grad_norm``: the sum over conv and linear layers of the L2 norm of ``dL/dtheta``.

Except synflow the networks run in training mode, so BatchNorm normalises with the batch's own
statistics (Abdelfattah et al.'s setting). Higher scores are better for every proxy.

Reproducibility: the weights and the minibatch depend only on the seed (and the architecture for
the weights); the proxies run on :attr:`ZeroCostEvaluator.threads` CPU threads (default one), part
of the fingerprint because the thread count changes the last digits of float sums.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nas_gym.backends.cifar.data import check_cifar10, load_cifar10, train_val_split
from nas_gym.backends.cifar.training import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    derived_seed,
    seeded_global_rng,
)
from nas_gym.core.checks import check_int
from nas_gym.core.devices import device_text, device_type_of, resolve_device, torch_threads
from nas_gym.core.errors import did_you_mean
from nas_gym.spaces import SearchSpace, make_space

if TYPE_CHECKING:
    from nas_gym.backends.cifar.trainer import BudgetLike, CifarTrainer

ZERO_COST_VERSION = 1
"""Bumped whenever a change of this module changes a score or the meaning of
:attr:`ZeroCostEvaluator.fingerprint` (it is part of it)."""

DEFAULT_BATCH_SIZE = 64
"""Images of the minibatch: Abdelfattah et al.'s one batch of 64 (synflow reads only its shape)."""

JACOB_COV_K = 1e-5
"""The regulariser ``k`` of ``jacob_cov`` (Mellor et al.)."""


# ---------------------------------------------------------------------------------------- the proxies
def _weighted_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """The layers whose weights the gradient proxies sum over (Abdelfattah et al.'s choice)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _skip_batchnorm(module: nn.Module) -> None:
    """Replace every BatchNorm of ``module`` by the identity, in place."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _skip_batchnorm(child)


def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Synaptic flow of ``model`` (modified in place: BatchNorm removed, float64, ``|theta|``)."""
    _skip_batchnorm(model)
    model.double()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    model(ones).sum().backward()
    return _saliency(_weighted_layers(model))


def naswot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """log |det K| of the activation-pattern kernel of the batch (Mellor et al. 2021)."""
    n = images.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=images.device)

    def add_codes(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        # A pre-hook: an in-place ReLU has not overwritten its input yet.
        codes = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float32)
        # Agreements on active units, c c^T, plus on inactive ones, (1 - c)(1 - c)^T = units -
        # s_i - s_j + c c^T (s: active units per image): one product instead of two. Its entries are
        # integers below 2**24, which float32 sums exactly, so the kernel is exact either way.
        active = codes.sum(dim=1, dtype=torch.float64)
        both = (codes @ codes.T).to(torch.float64)
        kernel.add_(2 * both - active[:, None] - active[None, :] + codes.shape[1])

    handles = [
        m.register_forward_pre_hook(add_codes)
        for m in model.modules()
        if isinstance(m, (nn.ReLU, nn.Sigmoid))
    ]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    _, logdet = np.linalg.slogdet(kernel.cpu().numpy())
    return float(logdet)


def jacob_cov(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Correlation of the input Jacobians across the batch (Mellor et al. 2020)."""
    x = images.clone().requires_grad_(True)
    out = model(x)
    out.backward(torch.ones_like(out))
    # No gradient reaches an input that the output does not depend on (a disconnected cell).
    grad = torch.zeros_like(x) if x.grad is None else x.grad
    jacobians = grad.reshape(len(x), -1).double().cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobians)
    # A constant Jacobian (an output that ignores the input) has no correlation; such images are
    # counted as perfectly correlated, the worst case, instead of making the score NaN.
    corr = np.nan_to_num(corr, nan=1.0)
    v = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    return float(-np.sum(np.log(v + JACOB_COV_K) + 1.0 / (v + JACOB_COV_K)))


def _saliency(layers: list[nn.Conv2d | nn.Linear]) -> float:
    """``sum |theta * grad|`` over the weights of ``layers`` (those that got a gradient)."""
    with torch.no_grad():
        return math.fsum(
            float((m.weight * m.weight.grad).abs().sum()) for m in layers if m.weight.grad is not None
        )


def _loss_gradients(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> list[nn.Conv2d | nn.Linear]:
    """The conv and linear layers of ``model`` after a backward pass of the batch's cross-entropy."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    return _weighted_layers(model)


def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Connection sensitivity: ``sum |theta * dL/dtheta|`` (Lee et al. 2019)."""
    return _saliency(_loss_gradients(model, images, labels))


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The sum of the per-layer L2 norms of the loss gradient."""
    layers = [m for m in _loss_gradients(model, images, labels) if m.weight.grad is not None]
    with torch.no_grad():
        return math.fsum(float(m.weight.grad.norm()) for m in layers)


Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

PROXIES: dict[str, Proxy] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
    "jacob_cov": jacob_cov,
}
"""The zero-cost budgets of ``NASCifar-v0``, cheapest first (seconds per NAS-Bench-201 cell in
``docs/zero_cost.md``)."""


@contextlib.contextmanager
def counted_flops(model: nn.Module) -> Iterator[list[int]]:
    """``[multiply-adds]`` of one image of the forward pass inside the block (each proxy makes
    one), counted as :func:`~nas_gym.backends.cifar.training.count_flops` counts them: conv and
    linear layers only. Counted on the proxy's own pass because ``count_flops``'s meta-device
    pass takes far longer than ``synflow`` itself."""
    total = [0]

    def conv(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        total[0] += output[0].numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    def linear(module: nn.Linear, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        total[0] += output[0].numel() * module.in_features

    handles = [
        m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear) for m in _weighted_layers(model)
    ]
    try:
        yield total
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------- the minibatch
_batches: dict[tuple[str, int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def proxy_minibatch(
    batch_size: int, seed: int, device: torch.device, data_dir: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)``: ``batch_size`` images drawn without replacement (seeded by ``seed``)
    from the training part of the fixed train/validation split, normalised like the trainer's
    input (float32, 32x32). Cached per process."""
    folder = check_cifar10(data_dir)
    key = (str(folder.resolve()), batch_size, seed, str(device))
    if key not in _batches:
        images, labels = load_cifar10(data_dir, split="train")
        train, _ = train_val_split()
        rows = np.random.default_rng(derived_seed(seed, "", "zero-cost-batch")).choice(
            train, size=batch_size, replace=False
        )
        x = torch.from_numpy(images[rows].astype(np.float32) / 255.0)
        mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
        _batches[key] = (((x - mean) / std).to(device), torch.from_numpy(labels[rows]).to(device))
    return _batches[key]


# ---------------------------------------------------------------------------------------- the evaluator
class ZeroCostEvaluator:
    """The evaluator of ``NASCifar-v0`` under a zero-cost budget: ``evaluator(arch)`` scores the
    untrained network of ``arch`` with one proxy of :data:`PROXIES` and returns::

        {"accuracy": None,        # nothing is trained
         "score": float,          # the proxy's score, higher is better (the reward)
         "proxy": str,            # its name
         "params": int, "flops": int,  # of the architecture as the space defines it
         "budget": str,           # the proxy's name, as a trainer reports its budget
         "train_seconds": float,  # wall time from building the network to the score
         "status": "ok" | "diverged",
         "error": str}            # only when the score is not finite ("diverged")

    The instance holds only settings and pickles cheaply (worker processes); the minibatch is
    loaded on the first call of each process. The user's global torch RNG and thread count are
    left as they were.

    Args:
        space: preset name or :class:`~nas_gym.spaces.SearchSpace`.
        proxy: a name of :data:`PROXIES`.
        batch_size: images of the minibatch (at least 2: the kernels compare images).
        seed: seeds the weights (the trainer's initialisation for that seed) and the minibatch.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, as for the trainer.
        data_dir: folder holding ``cifar10/cifar-10-batches-py`` (default ``$NAS_GYM_DATA``, else
            ``~/.cache/nas_gym``); checked here.
        download: fetch CIFAR-10 when it is missing.
        threads: CPU threads of the proxy (default 1: the networks are scored one image batch at
            a time, and one thread keeps the scores reproducible everywhere). A trainer made by
            :meth:`with_fidelity` gets the value as given (``None``: the trainer's default).
    """

    def __init__(
        self,
        space: str | SearchSpace = "seed",
        proxy: str = "synflow",
        batch_size: int = DEFAULT_BATCH_SIZE,
        seed: int = 0,
        device: str | torch.device = "auto",
        data_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
        threads: int | None = None,
    ):
        self.space = make_space(space)
        self.proxy = check_proxy(proxy)
        self.batch_size = check_int(batch_size, "batch_size", minimum=2)
        self.seed = check_int(seed, "seed")
        self.device = device_text(device)
        self.device_type = device_type_of(self.device)
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.download = bool(download)
        self.trainer_threads = check_int(threads, "threads", minimum=1, none_ok=True)
        check_cifar10(self.data_dir, download=self.download)

    @property
    def fidelities(self) -> tuple[str, ...]:
        """The named fidelities, cheapest first: the proxies, then the trainer's budgets."""
        from nas_gym.backends.cifar.trainer import CifarTrainer  # trainer.py dispatches back here

        return (*PROXIES, *CifarTrainer.fidelities)

    @property
    def fidelity(self) -> str:
        """What ``info["fidelity"]`` names: the proxy."""
        return self.proxy

    @property
    def threads(self) -> int:
        """The CPU threads of the proxy computation."""
        return self.trainer_threads or 1

    @property
    def fingerprint(self) -> str:
        """The identity of the scores in an evaluation store: backend and its version, proxy,
        space, batch size, seed, device type and, on the CPU, the thread count."""
        threads = f" threads={self.threads}" if self.device_type == "cpu" else ""
        return (
            f"cifar10-zero-cost/v{ZERO_COST_VERSION} proxy={self.proxy} space={self.space!r} "
            f"batch={self.batch_size} seed={self.seed} device={self.device_type}{threads}"
        )

    def with_fidelity(self, fidelity: str | BudgetLike) -> ZeroCostEvaluator | CifarTrainer:
        """This evaluator with another proxy, or, for any other budget (a name or a dict of
        :func:`~nas_gym.backends.cifar.budget.resolve_budget`), the
        :class:`~nas_gym.backends.cifar.trainer.CifarTrainer` of the same space, seed, device
        and data: the fidelity of an episode."""
        if isinstance(fidelity, str) and fidelity in PROXIES:
            clone = copy.copy(self)  # settings only
            clone.proxy = fidelity
            return clone
        from nas_gym.backends.cifar.trainer import CifarTrainer  # trainer.py dispatches back here

        return CifarTrainer(
            self.space,
            budget=fidelity,
            device=self.device,
            data_dir=self.data_dir,
            download=self.download,
            seed=self.seed,
            threads=self.trainer_threads,
        )

    def with_threads(self, threads: int) -> ZeroCostEvaluator:
        """This evaluator on ``threads`` CPU threads (an executor's share per task)."""
        clone = copy.copy(self)
        clone.trainer_threads = check_int(threads, "threads", minimum=1)
        return clone

    def __call__(self, arch: str) -> dict[str, Any]:
        device = resolve_device(self.device)
        if device.type != self.device_type:
            raise RuntimeError(
                f"expected device 'auto' to mean {self.device_type!r} in this process, as it did where "
                f"the evaluator was built (its fingerprint names it), got {device.type!r}; pass "
                "device='cpu' or device='cuda' explicitly"
            )
        canonical = self.space.format(self.space.validate(arch))
        images, labels = proxy_minibatch(self.batch_size, self.seed, device, self.data_dir)
        start = time.perf_counter()
        with torch_threads(self.threads if device.type == "cpu" else None):
            with seeded_global_rng(device, derived_seed(self.seed, canonical, "init")), torch.device(device):
                model = self.space.build_model(canonical)
            params = sum(p.numel() for p in model.parameters())  # before synflow drops BatchNorm
            model.train()
            with counted_flops(model) as flops:
                score = PROXIES[self.proxy](model, images, labels)
        metrics: dict[str, Any] = {
            "accuracy": None,
            "score": score,
            "proxy": self.proxy,
            "params": params,
            "flops": flops[0],
            "budget": self.proxy,
            "train_seconds": time.perf_counter() - start,
            "status": "ok",
        }
        if not math.isfinite(score):
            metrics.update(score=None, status="diverged", error=f"the {self.proxy} score is {score}")
        return metrics

    def __repr__(self) -> str:
        return (
            f"ZeroCostEvaluator(space={self.space!r}, proxy={self.proxy!r}, batch_size={self.batch_size}, "
            f"seed={self.seed}, device={self.device!r})"
        )


def check_proxy(proxy: Any) -> str:
    """``proxy`` when it names one of :data:`PROXIES`; raises ``ValueError`` saying which exist."""
    if not isinstance(proxy, str) or proxy not in PROXIES:
        raise ValueError(
            f"expected a zero-cost proxy in {list(PROXIES)}, got {proxy!r}{did_you_mean(str(proxy), PROXIES)}"
        )
    return proxy
