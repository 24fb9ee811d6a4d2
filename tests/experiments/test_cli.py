"""The nas-gym command line in this process: listings, bad input as exit code 2 with one line, a
bug inside a running command as a traceback, and the options that reach the runs
(``--threads``, ``--dataset``, the executor). End-to-end runs in real processes are in
``test_cli_end_to_end.py``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from agents.random_search import RandomAgent
from nas_gym.backends.cifar import trainer
from nas_gym.backends.tables.nb201 import NB201Evaluator
from nas_gym.core.devices import default_threads
from nas_gym.experiments import compare, runs
from nas_gym.experiments.cli import main
from nas_gym.experiments.folder import CONFIG, HISTORY
from nas_gym.parallel.spec import ExecutorSpec

SEARCH = ["search", "--env", "NASBench201-v0", "--agent", "random", "--episodes", "2"]
COMPARE = ["compare", "--env", "NASBench201-v0", "--agents", "random", "--seeds", "1", "--episodes", "2"]


class Stop(Exception):
    """Raised by a spy once it has seen what it came for; neither bad input nor a library error."""


def test_envs_and_agents_are_listed(capsys) -> None:
    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["NASCifar-v0", "NASBench201-v0", "NASBenchMacro-v0"]
    assert all(len(line.split()) > 2 for line in lines)
    assert main(["agents"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"random", "evolution", "reinforce", "ppo", "maskable-ppo", "a2c", "dqn"} <= set(names)


# ---------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["search", "--env", "NASCifar-v1", "--agent", "random", "--episodes", "2"],
            "unknown env 'NASCifar-v1': expected one of NASCifar-v0, NASBench201-v0, NASBenchMacro-v0 "
            "(did you mean 'NASCifar-v0'?)",
        ),
        (
            ["search", "--env", "NASBench201-v0", "--agent", "reinforc", "--episodes", "2"],
            "(did you mean 'reinforce'?)",
        ),
        ([*SEARCH[:-1], "0"], "expected a positive integer, got 0"),
        ([*SEARCH, "--threads", "0"], "argument --threads: expected a positive integer, got 0"),
        (SEARCH[:-2], "expected --episodes N or --budget-seconds T"),
        ([*SEARCH, "--budget", "smoke"], "--budget is not an option of NASBench201-v0"),
        ([*SEARCH, "--dataset", "cifar1000"], "got 'cifar1000' (did you mean 'cifar100'?)"),
        ([*COMPARE, "--dataset", "cifar1000"], "got 'cifar1000' (did you mean 'cifar100'?)"),
        (
            ["train", "--space", "seed", "--arch", "k7-relu-max"],
            "expected layer 1 as <kernel>-<activation>-<pool>",
        ),
        (
            ["train", "--arch", "k3-relu-max", "--budget", '{"epochz": 1}'],
            "got 'epochz' (did you mean 'epochs'?)",
        ),
        (["train", "--arch", "k3-relu-max", "--device", "cuda:99"], "for device='cuda:99'"),
        (
            ["search", "--env", "NASCifar-v0", "--agent", "random", "--episodes", "1", "--device", "cuda:99"],
            "for device='cuda:99'",
        ),
        (
            [
                "compare",
                "--env",
                "NASCifar-v0",
                "--agents",
                "random",
                "--seeds",
                "1",
                "--episodes",
                "1",
                "--device",
                "cuda:99",
            ],
            "for device='cuda:99'",
        ),
        (
            [
                "compare",
                "--env",
                "NASBench201-v0",
                "--agents",
                "random,evo",
                "--seeds",
                "2",
                "--episodes",
                "3",
            ],
            "unknown agent 'evo'",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)] if args[0] != "frobnicate" else args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
    assert not out.exists()  # refused before anything was written


def test_unknown_executor_exits_2(capsys) -> None:
    assert main([*SEARCH, "--executor", "dask"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'dask'" in err and len(err.strip().splitlines()) == 1


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    for args in (SEARCH, COMPARE, ["train", "--arch", "k3-relu-max"]):
        assert main([*args, "--out", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(f"expected --out to name a folder, got the file {path}")


@pytest.mark.parametrize(
    "args",
    [
        ["search", "--env", "NASCifar-v0", "--agent", "random", "--episodes", "2", "--budget", "nope"],
        [
            "search",
            "--env",
            "NASCifar-v0",
            "--agent",
            "random",
            "--episodes",
            "2",
            "--budget",
            '{"epochs": 0}',
        ],
        [*SEARCH, "--dataset", "nope"],
        [*SEARCH, "--tensorboard", "notes.txt"],
        SEARCH[:-2],
        [*COMPARE, "--dataset", "nope"],
        [
            "compare",
            "--env",
            "NASCifar-v0",
            "--agents",
            "random",
            "--seeds",
            "1",
            "--episodes",
            "1",
            "--budget",
            "x",
        ],
        ["train", "--arch", "k3-relu-max", "--budget", "nope"],
        ["train", "--arch", "k9-relu-max"],
        [*SEARCH, "--executor", "dask"],
    ],
)
def test_refused_commands_leave_no_folder(tmp_path: Path, monkeypatch, capsys, args: list[str]) -> None:
    # Without --out a run goes to runs/<env>-<agent>-<time>/: neither it nor runs/ may stay behind.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a file where a folder is expected")
    assert main(args) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_os_error_is_one_line_with_the_path_and_the_fix(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run"
    assert main([*SEARCH, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "Not a directory" in err and str(tmp_path / "file") in err and "pass another path" in err
    assert "[Errno" not in err


def test_a_permission_error_names_the_path(tmp_path: Path, monkeypatch, capsys) -> None:
    from nas_gym.experiments.folder import RunFolder

    def refuse(self, config) -> None:
        raise PermissionError(13, "Permission denied", str(self.path / CONFIG))

    monkeypatch.setattr(RunFolder, "write_config", refuse)
    assert main([*SEARCH, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"nas-gym: error: Permission denied: {tmp_path / 'run' / CONFIG}: pass a path you may write to"
    )
    assert not (tmp_path / "run").exists()


def test_an_os_error_without_a_path_is_its_message(tmp_path: Path, monkeypatch, capsys) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Failed to connect to the cluster at 127.0.0.1:6379")

    monkeypatch.setattr(runs, "run_search", refuse)
    assert main([*SEARCH, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "nas-gym: error: Failed to connect to the cluster at 127.0.0.1:6379"


# ---------------------------------------------------------------------------------------- bugs
def _raise_type_error(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def test_a_type_error_in_the_set_up_of_a_search_is_bad_input(tmp_path: Path, capsys, monkeypatch) -> None:
    # Before the run starts, a TypeError is a wrong argument met deeper down: one line, and the
    # set-up leaves nothing behind.
    monkeypatch.setattr(runs, "make_env", _raise_type_error)
    assert main([*SEARCH, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == "nas-gym: error: unsupported operand type(s) for +: 'int' and 'str'\n"
    assert not (tmp_path / "run").exists()


def test_a_type_error_inside_a_running_search_keeps_its_traceback(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setattr(RandomAgent, "search", _raise_type_error)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\)"):
        main([*SEARCH, "--out", str(tmp_path / "run")])


def test_a_type_error_inside_a_running_comparison_keeps_its_traceback(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setattr(compare, "run_one", _raise_type_error)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\)"):
        main([*COMPARE, "--executor", "serial", "--out", str(tmp_path / "cmp")])


def test_a_type_error_inside_a_training_keeps_its_traceback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(trainer, "final_train", _raise_type_error)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\)"):
        main(
            ["train", "--arch", "k3-relu-max", "--budget", "smoke", "--device", "cpu", "--out", str(tmp_path)]
        )


# ---------------------------------------------------------------------------------------- options
def test_search_and_compare_take_one_executor_spec(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    seen: dict[str, ExecutorSpec] = {}

    def spy(command: str):
        def record(*args: Any, executor: ExecutorSpec, **kwargs: Any) -> Any:
            seen[command] = executor
            raise Stop

        return record

    monkeypatch.setattr(runs, "run_search", spy("search"))
    monkeypatch.setattr(compare, "run_compare", spy("compare"))
    options = ["--executor", "processes", "--workers", "2", "--threads", "1", "--out", str(tmp_path / "x")]
    with pytest.raises(Stop):
        main([*SEARCH, "--num-envs", "2", *options])
    with pytest.raises(Stop):
        main([*COMPARE, *options])
    assert seen["search"] == seen["compare"] == ExecutorSpec("processes", workers=2, threads=1)


def _cifar(command: list[str], threads: int, out: Path) -> list[str]:
    return [*command, "--budget", "smoke", "--device", "cpu", "--threads", str(threads), "--out", str(out)]


def test_threads_reach_the_evaluator_of_a_search(tmp_path: Path, cifar_dir: Path, monkeypatch) -> None:
    threads = default_threads() + 1  # not what the trainer would pick by itself
    seen: list[Any] = []

    def search(self, env, **kwargs: Any) -> Any:
        seen.append(env.unwrapped.runner.evaluator)
        raise Stop

    monkeypatch.setattr(RandomAgent, "search", search)
    args = ["search", "--env", "NASCifar-v0", "--agent", "random", "--episodes", "1"]
    with pytest.raises(Stop):
        main(_cifar(args, threads, tmp_path / "run"))
    (evaluator,) = seen
    assert evaluator.speed_options.threads == threads


def test_threads_reach_the_runs_of_a_comparison(tmp_path: Path, cifar_dir: Path, monkeypatch) -> None:
    threads = default_threads() + 1
    seen: list[tuple[dict[str, Any], int]] = []

    def run_one(config) -> Any:
        env = compare.make_env(config, compare.make_agent(config.agent, seed=config.seed))
        seen.append((config.env_kwargs, env.unwrapped.runner.evaluator.speed_options.threads))
        env.close()
        raise Stop

    monkeypatch.setattr(compare, "run_one", run_one)
    args = ["compare", "--env", "NASCifar-v0", "--agents", "random", "--seeds", "1", "--episodes", "1"]
    with pytest.raises(Stop):
        main(_cifar([*args, "--executor", "serial"], threads, tmp_path / "cmp"))
    ((env_kwargs, evaluator_threads),) = seen
    assert env_kwargs["threads"] == evaluator_threads == threads


def test_threads_reach_the_final_training(tmp_path: Path, monkeypatch, capsys) -> None:
    calls: list[dict[str, Any]] = []

    def final_train(space, arch: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"arch": arch, "val_accuracy": 0.5, "test_accuracy": 0.25}

    monkeypatch.setattr(trainer, "final_train", final_train)
    assert main(_cifar(["train", "--arch", "k3-relu-max"], 3, tmp_path)) == 0
    assert calls[0]["threads"] == 3 and calls[0]["budget"] == "smoke" and calls[0]["device"] == "cpu"
    assert json.loads((tmp_path / "train.json").read_text())["test_accuracy"] == 0.25


def test_search_and_compare_take_a_nb201_dataset(tmp_path: Path, data_dir: Path, capsys) -> None:
    tables = {name: NB201Evaluator(data_dir, dataset=name) for name in ("cifar10", "cifar100")}
    out = tmp_path / "run"
    assert main([*SEARCH[:-1], "5", "--dataset", "cifar100", "--out", str(out)]) == 0
    assert json.loads((out / CONFIG).read_text())["env_kwargs"] == {"dataset": "cifar100"}
    history = [json.loads(line) for line in (out / HISTORY).read_text().splitlines()]
    assert [r["test_accuracy"] for r in history] == [
        tables["cifar100"](r["arch"])["test_accuracy"] for r in history
    ]
    assert [r["test_accuracy"] for r in history] != [
        tables["cifar10"](r["arch"])["test_accuracy"] for r in history
    ]

    cmp = tmp_path / "cmp"
    assert main([*COMPARE, "--dataset", "cifar100", "--executor", "serial", "--out", str(cmp)]) == 0
    with open(cmp / "results.csv") as f:
        (row,) = csv.DictReader(f)
    assert float(row["test_accuracy"]) == tables["cifar100"](row["best_arch"])["test_accuracy"]
    assert float(row["test_accuracy"]) != tables["cifar10"](row["best_arch"])["test_accuracy"]


# ---------------------------------------------------------------------------------------- runs
def test_resume_keeps_the_run_settings(tmp_path: Path, data_dir: Path, capsys) -> None:
    out = tmp_path / "run"
    base = ["search", "--env", "NASBench201-v0", "--agent", "random", "--out", str(out)]
    assert main([*base, "--budget-seconds", "500"]) == 0
    first = len((out / HISTORY).read_text().splitlines())
    assert main([*base, "--resume"]) == 0
    assert len((out / HISTORY).read_text().splitlines()) == first  # its own stop: nothing to add
    assert main([*base, "--budget-seconds", "2000", "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["train_seconds"] >= 2000
    capsys.readouterr()
    assert main([*base, "--reward", "mnas-flops", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "expected the settings of the run" in err and "mnas-flops" in err


def test_train_writes_its_result(tmp_path: Path, cifar_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    budget = json.dumps({"epochs": 1, "train_size": 640, "val_size": 128, "batch_size": 32})
    assert main(["train", "--arch", "k3-relu-max", "--budget", budget, "--device", "cpu"]) == 0
    (written,) = (tmp_path / "runs").glob("train-*/train.json")
    result = json.loads(written.read_text())
    assert result["arch"] == "k3-relu-max" and 0 <= result["test_accuracy"] <= 1


# ---------------------------------------------------------------------------------------- GPUs
def test_per_gpu_and_num_gpus_reach_the_executor_spec(tmp_path: Path, monkeypatch) -> None:
    seen: list[ExecutorSpec] = []

    def record(*args: Any, executor: ExecutorSpec, **kwargs: Any) -> Any:
        seen.append(executor)
        raise Stop

    monkeypatch.setattr(runs, "run_search", record)
    monkeypatch.setattr(compare, "run_compare", record)
    out = ["--out", str(tmp_path / "x")]
    for command in (SEARCH, COMPARE):
        with pytest.raises(Stop):
            main([*command, "--executor", "processes", "--per-gpu", "2", *out])
    with pytest.raises(Stop):
        main([*SEARCH, "--executor", "ray", "--per-gpu", "4", *out])
    with pytest.raises(Stop):
        main([*SEARCH, "--executor", "ray", *out])  # no --num-gpus: a GPU per task where there are GPUs
    assert seen == [
        ExecutorSpec("processes", per_gpu=2),
        ExecutorSpec("processes", per_gpu=2),
        ExecutorSpec("ray", per_gpu=4),
        ExecutorSpec("ray", num_gpus=None),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--executor", "processes", "--per-gpu", "0"], "--per-gpu: expected a positive integer, got 0"),
        (
            ["--per-gpu", "2"],
            "expected per_gpu only with executor 'processes' or 'ray', got per_gpu=2 with 'serial'",
        ),
        (
            ["--executor", "processes", "--workers", "4", "--per-gpu", "2"],
            "expected either workers or per_gpu (workers per GPU) with executor 'processes', got workers=4",
        ),
        (
            ["--executor", "ray", "--num-gpus", "0.5", "--per-gpu", "2"],
            "expected either num_gpus or per_gpu (num_gpus = 1 / per_gpu) with executor 'ray'",
        ),
    ],
)
def test_bad_gpu_options_exit_2_with_one_line(
    tmp_path: Path, capsys, options: list[str], message: str
) -> None:
    assert main([*SEARCH, *options, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x").exists()
