"""The table backends: NAS-Bench-201 and NAS-Bench-Macro lookups, their envs, errors and caching;
the cost-aware objectives and the Pareto front."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_gym  # noqa: F401
from nas_gym.envs import NASBench201Env, NASBenchMacroEnv
from nas_gym.evaluation import tables
from nas_gym.evaluation.tables import (
    MACRO_FILE,
    NB201_FILE,
    MacroEvaluator,
    NB201Evaluator,
    NB201Table,
    TableError,
    TableNotFoundError,
    load_macro_table,
    load_nb201_table,
)
from nas_gym.objectives import MnasObjective, is_finite_number, make_objective, mnas_objective
from nas_gym.pareto import has_cost, pareto_front, plot_pareto
from nas_gym.spaces import InvalidArchitectureError

BEST_6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def nb201_rows(data_dir: Path) -> dict[int, dict[str, str]]:
    """The raw CSV rows by arch_index, read independently of the code under test."""
    with open(data_dir / NB201_FILE, newline="") as f:
        return {int(row["arch_index"]): row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def macro_raw(data_dir: Path) -> dict[str, dict]:
    return json.loads((data_dir / MACRO_FILE).read_text())


def run_episode(env: gym.Env, actions) -> tuple[float, dict]:
    env.reset(seed=0)
    for n, action in enumerate(actions, start=1):
        _, reward, terminated, _, info = env.step(int(action))
        assert terminated == (n == len(actions))
    return float(reward), info


# ---------------------------------------------------------------------------- NAS-Bench-201
def test_tables_load(data_dir: Path) -> None:
    nb201 = load_nb201_table(data_dir)
    assert len(nb201) == 15_625 and len(set(nb201.arch_strs)) == 15_625
    assert BEST_6111 in nb201
    assert not nb201.columns["c10_test_acc_200ep"].flags.writeable
    macro = load_macro_table(data_dir)
    assert len(macro) == 6_561 and macro.test_acc.shape == (6_561, 3)
    assert "22212220" in macro and "22212223" not in macro


@pytest.mark.parametrize("arch_index", [6111, 13714])
def test_known_optima_through_an_episode(data_dir: Path, nb201_rows, arch_index: int) -> None:
    row = nb201_rows[arch_index]
    env = gym.make("NASBench201-v0", data_dir=data_dir)
    reward, info = run_episode(env, env.unwrapped.space.parse(row["arch_str"]))
    assert info["arch"] == row["arch_str"]
    assert info["test_accuracy"] == pytest.approx(0.9437, abs=5e-5)
    assert reward == info["accuracy"] == pytest.approx(float(row["c10valid_valid_acc_12ep"]) / 100)
    assert info["arch_index"] == arch_index
    assert info["status"] == "ok" and info["params"] is None and info["flops"] is None
    assert info["cached"] is False


def test_optimum_of_the_reward_and_of_the_test_accuracy(data_dir: Path, nb201_rows) -> None:
    evaluator = NB201Evaluator(data_dir)
    best_reward = evaluator.best("accuracy")
    assert best_reward.arch == nb201_rows[13714]["arch_str"]
    assert best_reward.value == pytest.approx(0.84892)
    best_test = evaluator.best()
    assert best_test.arch in (nb201_rows[6111]["arch_str"], nb201_rows[13714]["arch_str"])
    assert best_test.value == pytest.approx(0.9437333, abs=1e-6)
    assert evaluator.optimum() == {"reward": best_reward.value, "test_accuracy": best_test.value}
    assert NB201Evaluator(data_dir, dataset="cifar100").best().value == pytest.approx(0.735133, abs=1e-6)
    with pytest.raises(ValueError, match=r"expected key in \['accuracy', 'test_accuracy'\] .* got 'params'"):
        evaluator.best("params")


def test_simulated_train_seconds(data_dir: Path, nb201_rows) -> None:
    row = nb201_rows[1462]  # the slowest cell, all nor_conv_3x3
    per_epoch = float(row["c10valid_train_time_per_epoch_s"])
    valid = float(row["c10valid_valid_eval_time_s"])
    full = float(row["c10valid_train_time_200ep_s"])
    assert NB201Evaluator(data_dir)(row["arch_str"])["train_seconds"] == pytest.approx(12 * per_epoch + valid)
    long = NB201Evaluator(data_dir, metric="200ep")(row["arch_str"])
    assert long["train_seconds"] == pytest.approx(full + valid)
    # The table has only CIFAR-10 times; they stand for every dataset.
    assert NB201Evaluator(data_dir, dataset="cifar100")(row["arch_str"])["train_seconds"] == pytest.approx(
        12 * per_epoch + valid
    )


@pytest.mark.parametrize(
    ("dataset", "metric", "reward_column", "test_column"),
    [
        ("cifar10", "12ep", "c10valid_valid_acc_12ep", "c10_test_acc_200ep"),
        ("cifar10", "200ep", "c10valid_valid_acc_200ep", "c10_test_acc_200ep"),
        ("cifar100", "12ep", "c100_valid_acc_12ep", "c100_test_acc_200ep"),
        ("ImageNet16-120", "12ep", "in16_valid_acc_12ep", "in16_test_acc_200ep"),
    ],
)
def test_dataset_and_metric_pick_the_columns(
    data_dir: Path, nb201_rows, dataset: str, metric: str, reward_column: str, test_column: str
) -> None:
    env = gym.make("NASBench201-v0", data_dir=data_dir, dataset=dataset, metric=metric)
    for arch_index in (0, 857, 9930):
        row = nb201_rows[arch_index]
        reward, info = run_episode(env, env.unwrapped.space.parse(row["arch_str"]))
        assert reward == pytest.approx(float(row[reward_column]) / 100)
        assert info["test_accuracy"] == pytest.approx(float(row[test_column]) / 100)


def test_dataset_and_metric_errors(data_dir: Path) -> None:
    for dataset in ("cifar100", "ImageNet16-120"):
        with pytest.raises(ValueError, match=f"200-epoch validation accuracy for 'cifar10' only.*{dataset}"):
            NB201Evaluator(data_dir, dataset=dataset, metric="200ep")
    with pytest.raises(ValueError, match=r"expected dataset in .*got 'cifar-10' \(did you mean 'cifar10'"):
        gym.make("NASBench201-v0", data_dir=data_dir, dataset="cifar-10")
    with pytest.raises(ValueError, match="expected metric in .*got '50ep'"):
        NB201Evaluator(data_dir, metric="50ep")


def test_unknown_architecture_is_refused(data_dir: Path) -> None:
    with pytest.raises(InvalidArchitectureError, match="expected a NAS-Bench-201 arch_str"):
        NB201Evaluator(data_dir)("|conv~0|")
    with pytest.raises(InvalidArchitectureError, match="expected an 8-digit NAS-Bench-Macro"):
        MacroEvaluator(data_dir)("2221222")


def test_table_env_refuses_a_space_the_table_does_not_hold(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="expected the 'nb201' space .* got MacroSpace"):
        NASBench201Env(space="macro", data_dir=data_dir)
    with pytest.raises(ValueError, match="expected the 'macro' space .* got NB201Space"):
        NASBenchMacroEnv(space="nb201", data_dir=data_dir)
    # With its own evaluator, any space goes.
    env = NASBench201Env(space="macro", evaluator=lambda arch: {"accuracy": 0.5})
    assert run_episode(env, [0] * 8)[0] == 0.5


# ---------------------------------------------------------------------------- NAS-Bench-Macro
def test_macro_best_network(data_dir: Path) -> None:
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir)
    reward, info = run_episode(env, env.unwrapped.space.parse("22212220"))
    assert info["params"] == 1_985_514 and info["flops"] == 85_164_544
    assert round(100 * (reward + 2 * info["test_accuracy"]) / 3, 2) == 93.13
    assert info["train_seconds"] == 0.0


def test_macro_reward_is_one_run_and_test_accuracy_the_others(data_dir: Path, macro_raw) -> None:
    evaluator = MacroEvaluator(data_dir, seed=3)
    for arch in list(macro_raw)[:200]:
        runs = [v / 100 for v in macro_raw[arch]["test_acc"]]
        metrics = evaluator(arch)
        run = metrics["run"]
        assert metrics["accuracy"] == pytest.approx(runs[run])
        assert metrics["test_accuracy"] == pytest.approx((sum(runs) - runs[run]) / 2)
        assert metrics["params"] == macro_raw[arch]["params"]


def test_macro_run_choice_is_deterministic_and_depends_on_the_seed(data_dir: Path) -> None:
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


def test_macro_run_choice_does_not_depend_on_the_process(data_dir: Path) -> None:
    archs = ["22212220", "00000000", "12120210", "21002121", "11111111", "02012100"]
    here = [MacroEvaluator(data_dir, seed=7).run_of(a) for a in archs]
    code = (
        "import sys; from nas_gym.evaluation.tables import MacroEvaluator as M; "
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


def test_eval_seed_reaches_the_macro_evaluator(data_dir: Path) -> None:
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, eval_seed=5)
    assert env.unwrapped.runner.evaluator.seed == 5
    assert "seed=5" in env.unwrapped.runner.fingerprint


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("env_id", ["NASBench201-v0", "NASBenchMacro-v0"])
def test_missing_table(tmp_path: Path, env_id: str) -> None:
    relative, column = (
        (NB201_FILE, "c10valid_valid_acc_12ep") if "201" in env_id else (MACRO_FILE, "test_acc")
    )
    with pytest.raises(TableNotFoundError, match=r"(?s)not found.*" + relative.name) as caught:
        gym.make(env_id, data_dir=tmp_path)
    message = str(caught.value)
    assert column in message and "NAS_GYM_DATA" in message and str(tmp_path) in message
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, TableError)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_malformed_nb201_csv(tmp_path: Path, data_dir: Path) -> None:
    good = (data_dir / NB201_FILE).read_text().splitlines()
    header = good[0].split(",")

    def expect(lines: list[str], match: str) -> None:
        path = write(tmp_path / NB201_FILE, "\n".join(lines) + "\n")
        with pytest.raises(TableError, match=match) as caught:
            NB201Table.from_file(path)
        message = str(caught.value)
        assert str(path) in message and "NAS_GYM_DATA" in message
        assert "c10valid_valid_acc_12ep" in message and "arch_str" in message

    without = [i for i, c in enumerate(header) if c != "c10_test_acc_200ep"]
    expect(
        [",".join(line.split(",")[i] for i in without) for line in good], "got no column c10_test_acc_200ep"
    )
    expect(good[:100], "got 99 rows")
    bad_value = good[:]
    fields = bad_value[42].split(",")
    fields[header.index("c10valid_valid_acc_12ep")] = "n/a"
    bad_value[42] = ",".join(fields)
    expect(bad_value, "got 'n/a' in column c10valid_valid_acc_12ep on line 43")
    swapped = good[:]
    fields = swapped[7].split(",")
    fields[header.index("op_1from0")] = str((int(fields[header.index("op_1from0")]) + 1) % 5)
    swapped[7] = ",".join(fields)
    expect(swapped, "do not match arch_str .* on line 8")
    expect(good[:5] + ["1,2"] + good[6:], "got 2 fields on line 6")
    with pytest.raises(TableError, match="got an empty file"):
        NB201Table.from_file(write(tmp_path / "empty.csv", ""))


def test_malformed_macro_json(tmp_path: Path, macro_raw) -> None:
    def expect(data, match: str) -> None:
        path = write(tmp_path / MACRO_FILE, data if isinstance(data, str) else json.dumps(data))
        with pytest.raises(TableError, match=match) as caught:
            gym.make("NASBenchMacro-v0", data_dir=tmp_path)
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
    expect(dict(list(macro_raw.items())[:10]), "got 10 entries")


# ---------------------------------------------------------------------------- caching, pickling
def test_table_is_read_once_per_process(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    original = NB201Table.from_file.__func__

    def counting(cls, path):
        reads.append(path)
        return original(cls, path)

    monkeypatch.setattr(NB201Table, "from_file", classmethod(counting))
    tables.clear_table_cache()
    first = gym.make("NASBench201-v0", data_dir=data_dir)
    second = gym.make("NASBench201-v0", data_dir=data_dir, dataset="cifar100")
    copy = pickle.loads(pickle.dumps(first.unwrapped.runner.evaluator))
    assert copy(BEST_6111)["test_accuracy"] == pytest.approx(0.9437, abs=5e-5)
    # The same file through another spelling of the folder is the same cache entry.
    NB201Evaluator(data_dir / "nasbench201" / "..")
    assert len(reads) == 1
    assert first.unwrapped.runner.evaluator.table is second.unwrapped.runner.evaluator.table


def test_evaluators_pickle_small_and_give_the_same_metrics(data_dir: Path) -> None:
    for evaluator, arch in (
        (NB201Evaluator(data_dir, dataset="cifar100"), BEST_6111),
        (MacroEvaluator(data_dir, seed=2), "12120210"),
    ):
        blob = pickle.dumps(evaluator)
        assert len(blob) < 1_000  # the table is not in it
        copy = pickle.loads(blob)
        assert copy(arch) == evaluator(arch)
        assert copy.fingerprint == evaluator.fingerprint


def test_fingerprints_separate_backend_options(data_dir: Path) -> None:
    fingerprints = {
        NB201Evaluator(data_dir).fingerprint,
        NB201Evaluator(data_dir, metric="200ep").fingerprint,
        NB201Evaluator(data_dir, dataset="cifar100").fingerprint,
        MacroEvaluator(data_dir, seed=0).fingerprint,
        MacroEvaluator(data_dir, seed=1).fingerprint,
    }
    assert len(fingerprints) == 5


def test_store_records_table_lookups(data_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "evaluations.sqlite"
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, store=store)
    first = run_episode(env, [2, 2, 2, 1, 2, 2, 2, 0])[1]
    env.close()
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, store=store)
    again = run_episode(env, [2, 2, 2, 1, 2, 2, 2, 0])[1]
    env.close()
    assert again["cached"] is True and not first["cached"]
    assert again["test_accuracy"] == first["test_accuracy"] and again["run"] == first["run"]


# ---------------------------------------------------------------------------- API checkers
@pytest.mark.parametrize("env_id", ["NASBench201-v0", "NASBenchMacro-v0"])
def test_env_checkers_pass_without_warnings(data_dir: Path, env_id: str) -> None:
    env = gym.make(env_id, data_dir=data_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


# ---------------------------------------------------------------------------- objectives
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


def test_mnas_objectives_in_the_table_envs(data_dir: Path) -> None:
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, reward="mnas-params")
    reward, info = run_episode(env, env.unwrapped.space.parse("22212220"))
    assert reward == pytest.approx(info["accuracy"] * (1_985_514 / 1e6) ** -0.07)
    env = gym.make("NASBench201-v0", data_dir=data_dir, reward="mnas-flops")
    with pytest.raises(ValueError, match="does not report flops"):
        run_episode(env, [3] * 6)


# ---------------------------------------------------------------------------- Pareto front
def brute_force_front(points: np.ndarray) -> set[int]:
    acc, cost = points[:, 0], points[:, 1]
    front = set()
    for i in range(len(points)):
        better = (acc >= acc[i]) & (cost <= cost[i]) & ((acc > acc[i]) | (cost < cost[i]))
        if not better.any():
            front.add(i)
    return front


def test_pareto_front_small_example() -> None:
    points = [(0.90, 2.0), (0.92, 3.0), (0.89, 3.0), (0.85, 1.0), (0.92, 4.0), (0.90, 2.0), (0.80, 1.0)]
    assert pareto_front(points) == [3, 0, 5, 1]
    assert pareto_front(np.empty((0, 2))) == [] and pareto_front([]) == []


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct values, so ties in accuracy, in cost and in both are common.
    points = rng.integers(0, 12, size=(300, 2)).astype(float)
    front = pareto_front(points)
    assert set(front) == brute_force_front(points) and len(front) == len(set(front))
    costs = points[front, 1]
    assert np.all(np.diff(costs) >= 0)
    assert np.all(np.diff(points[front, 0]) >= 0)  # accuracy rises with cost along the front


def test_pareto_front_of_the_macro_table(data_dir: Path) -> None:
    table = load_macro_table(data_dir)
    points = np.stack([table.test_acc.mean(axis=1), table.params], axis=1)
    front = pareto_front(points)
    assert set(front) == brute_force_front(points)
    # The most accurate networks end the front ("22212220" ties with "22212202" in both).
    assert points[front[-1], 0] == points[:, 0].max()
    assert {"22212220", "22212202"} <= {table.archs[i] for i in front}


def test_pareto_front_errors() -> None:
    with pytest.raises(ValueError, match=r"expected \(accuracy, cost\) pairs.*got shape \(3,\)"):
        pareto_front([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="expected finite"):
        pareto_front([(0.1, float("nan"))])


def _pareto_record(arch: str, accuracy: float, params: int | None, status: str = "ok") -> dict:
    return {"arch": arch, "accuracy": accuracy, "params": params, "flops": None, "status": status}


def test_has_cost_tells_whether_plot_pareto_has_points(tmp_path: Path) -> None:
    with_params = [
        _pareto_record("a", 0.5, None),
        _pareto_record("b", 0.6, 2000, status="failed"),
        _pareto_record("b", 0.7, 2000),
        _pareto_record("b", 0.9, 2000),  # a repeat of "b": not shown again
        _pareto_record("c", 0.8, 3000),
    ]
    assert has_cost(with_params) and not has_cost(with_params, cost="flops")
    assert plot_pareto(with_params, str(tmp_path / "front.png")) == [2, 4]
    for history in ([], with_params[:2], [_pareto_record("a", 0.5, None)] * 3):
        assert not has_cost(history)
        with pytest.raises(ValueError, match="expected history entries with 'params', got none"):
            plot_pareto(history, str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()


def test_is_finite_number() -> None:
    for value in (0, -3, 2.5, np.float32(1.5), np.int64(7)):
        assert is_finite_number(value)
    for value in (True, False, float("nan"), float("inf"), -np.inf, "1", None, 1 + 0j):
        assert not is_finite_number(value)


@pytest.mark.parametrize("bad", ["true", "NaN", "Infinity", '"90"'])
def test_macro_table_refuses_test_acc_that_is_not_a_finite_number(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "macro.json"
    path.write_text(f'{{"00000000": {{"test_acc": [90.0, {bad}, 91.0], "params": 1000, "flops": 2000}}}}')
    with pytest.raises(TableError, match=r"got test_acc \[90\.0, .*, 91\.0\] for '00000000'"):
        tables.MacroTable.from_file(path)


@pytest.mark.parametrize("key", ["accuracy", "test_accuracy"])
def test_macro_optimum_is_the_best_lookup(data_dir: Path, key: str) -> None:
    evaluator = MacroEvaluator(data_dir, seed=4)
    values = {arch: evaluator(arch)[key] for arch in evaluator.table.archs}
    best = evaluator.best(key)
    assert best.value == max(values.values()) == values[best.arch]
    assert evaluator.optimum()["reward" if key == "accuracy" else key] == best.value
