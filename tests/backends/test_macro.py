"""NAS-Bench-Macro lookups: the table, the run behind the reward, the optimum, malformed files,
pickling, and the agreement of the table's sizes with the networks the space builds."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nas_gym.backends.tables.macro import MACRO_FILE, MacroEvaluator, MacroTable, load_macro_table
from nas_gym.backends.tables.reader import TableError
from nas_gym.spaces.macro_model import build_macro_network


@pytest.fixture(scope="module")
def macro_raw(data_dir: Path) -> dict[str, dict]:
    """The JSON as it is, read independently of the code under test."""
    return json.loads((data_dir / MACRO_FILE).read_text())


def test_table_loads(data_dir: Path) -> None:
    macro = load_macro_table(data_dir)
    assert len(macro) == 6_561 and macro.test_acc.shape == (6_561, 3)
    assert "22212220" in macro and "22212223" not in macro
    assert not macro.test_acc.flags.writeable and not macro.params.flags.writeable


def test_best_network(data_dir: Path) -> None:
    metrics = MacroEvaluator(data_dir)("22212220")
    assert metrics["params"] == 1_985_514 and metrics["flops"] == 85_164_544
    # The benchmark's best network: 93.13 % mean test accuracy over its three runs.
    assert round(100 * (metrics["accuracy"] + 2 * metrics["test_accuracy"]) / 3, 2) == 93.13
    assert metrics["train_seconds"] == 0.0


def test_reward_is_one_run_and_test_accuracy_the_others(data_dir: Path, macro_raw) -> None:
    evaluator = MacroEvaluator(data_dir, seed=3)
    for arch in list(macro_raw)[:200]:
        runs = [v / 100 for v in macro_raw[arch]["test_acc"]]
        metrics = evaluator(arch)
        run = metrics["run"]
        assert metrics["accuracy"] == pytest.approx(runs[run])
        assert metrics["test_accuracy"] == pytest.approx((sum(runs) - runs[run]) / 2)
        assert metrics["params"] == macro_raw[arch]["params"]


def test_run_choice_is_deterministic_and_depends_on_the_seed(data_dir: Path) -> None:
    archs = load_macro_table(data_dir).archs
    seed0 = [MacroEvaluator(data_dir, seed=0).run_of(a) for a in archs]
    assert seed0 == [MacroEvaluator(data_dir, seed=0).run_of(a) for a in archs]
    seed1 = [MacroEvaluator(data_dir, seed=1).run_of(a) for a in archs]
    changed = sum(a != b for a, b in zip(seed0, seed1))
    assert 0.5 < changed / len(archs) < 0.8  # about 2/3 for independent choices of 3 runs
    shares = np.bincount(seed0, minlength=3) / len(archs)
    assert np.all(np.abs(shares - 1 / 3) < 0.03)
    # Runs differ in accuracy, so the reward of some architectures changes with the seed.
    rewards0 = [MacroEvaluator(data_dir, seed=0)(a)["accuracy"] for a in archs[:50]]
    rewards1 = [MacroEvaluator(data_dir, seed=1)(a)["accuracy"] for a in archs[:50]]
    assert rewards0 != rewards1


def test_run_choice_does_not_depend_on_the_process(data_dir: Path) -> None:
    archs = ["22212220", "00000000", "12120210", "21002121", "11111111", "02012100"]
    here = [MacroEvaluator(data_dir, seed=7).run_of(a) for a in archs]
    code = (
        "import sys; from nas_gym.backends.tables.macro import MacroEvaluator as M; "
        f"e = M({str(data_dir)!r}, seed=7); print([e.run_of(a) for a in sys.argv[1:]])"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, *archs],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == str(here)


@pytest.mark.parametrize("key", ["accuracy", "test_accuracy"])
def test_optimum_is_the_best_lookup(data_dir: Path, key: str) -> None:
    evaluator = MacroEvaluator(data_dir, seed=4)
    values = {arch: evaluator(arch)[key] for arch in evaluator.table.archs}
    best = evaluator.best(key)
    assert best.value == max(values.values()) == values[best.arch]
    assert evaluator.optimum()["reward" if key == "accuracy" else key] == best.value
    assert evaluator.optimum()["arch"] == evaluator.best("accuracy").arch


# ---------------------------------------------------------------------------- malformed files
def test_malformed_json(tmp_path: Path, macro_raw) -> None:
    def expect(data, match: str) -> None:
        path = tmp_path / MACRO_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        with pytest.raises(TableError, match=match) as caught:
            MacroEvaluator(tmp_path)
        message = str(caught.value)
        assert str(path) in message and "NAS_GYM_DATA" in message and "test_acc, params, flops" in message

    expect("{not json", "got invalid JSON")
    expect([1, 2], "got a JSON list")
    expect({**macro_raw, "2221222x": macro_raw["22212220"]}, "got the key '2221222x'")
    broken = dict(macro_raw)
    broken["22212220"] = {k: v for k, v in macro_raw["22212220"].items() if k != "params"}
    expect(broken, r"got \['flops', 'mean_acc', 'std', 'test_acc'\] for '22212220'")
    broken["22212220"] = {**macro_raw["22212220"], "test_acc": [93.0, 92.0]}
    expect(broken, r"got test_acc \[93.0, 92.0\] for '22212220'")
    broken["22212220"] = {**macro_raw["22212220"], "params": True}
    expect(broken, r"got params True for '22212220'")
    expect(dict(list(macro_raw.items())[:10]), "got 10 entries")


@pytest.mark.parametrize("bad", ["true", "NaN", "Infinity", '"90"', "101.0"])
def test_table_refuses_test_acc_that_is_not_a_percentage(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "macro.json"
    path.write_text(f'{{"00000000": {{"test_acc": [90.0, {bad}, 91.0], "params": 1000, "flops": 2000}}}}')
    with pytest.raises(TableError, match=r"got test_acc \[90\.0, .*, 91\.0\] for '00000000'"):
        MacroTable.from_file(path)


# ---------------------------------------------------------------------------- pickling, identity
def test_evaluator_pickles_small_and_gives_the_same_metrics(data_dir: Path) -> None:
    evaluator = MacroEvaluator(data_dir, seed=2)
    blob = pickle.dumps(evaluator)
    assert len(blob) < 1_000  # the table is not in it
    copy = pickle.loads(blob)
    assert copy("12120210") == evaluator("12120210")
    assert copy.fingerprint == evaluator.fingerprint and repr(copy) == repr(evaluator)


def test_fingerprints_separate_seeds(data_dir: Path) -> None:
    fingerprints = {MacroEvaluator(data_dir, seed=s).fingerprint for s in (0, 1)}
    assert len(fingerprints) == 2
    assert all(f.startswith("nasbench-macro-table:") for f in fingerprints)
    with pytest.raises(TypeError, match="expected seed as an int, got 1.5"):
        MacroEvaluator(data_dir, seed=1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- table vs networks
def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of convolutions and linear layers for one 32x32 image (the benchmark's FLOPs)."""
    total = 0

    def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for handle in handles:
        handle.remove()
    return total


def test_table_sizes_match_the_networks_of_the_space(macro_raw: dict[str, dict]) -> None:
    rng = np.random.default_rng(0)
    sampled = rng.choice(sorted(macro_raw), size=12, replace=False).tolist()
    for arch in ["22212220", "00000000", "22222222", *sampled]:
        with torch.device("meta"):
            model = build_macro_network(arch)
        assert _param_count(model) == macro_raw[arch]["params"], arch
    assert _param_count(build_macro_network("22212220")) == 1_985_514


@pytest.mark.parametrize("arch", ["22212220", "00000000", "10210120"])
def test_table_flops_match_the_networks_of_the_space(macro_raw: dict[str, dict], arch: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one image: a second thread only contends
    try:
        assert _multiply_adds(build_macro_network(arch)) == macro_raw[arch]["flops"]
    finally:
        torch.set_num_threads(threads)
