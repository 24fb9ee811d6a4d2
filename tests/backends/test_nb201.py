"""NAS-Bench-201 lookups: the table, the columns behind each dataset and metric, the optimum,
simulated cost, fidelities, malformed files and pickling."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from nas_gym.backends.tables.nb201 import NB201_FILE, NB201Evaluator, NB201Table, load_nb201_table
from nas_gym.backends.tables.nb201_costs import network_cost
from nas_gym.backends.tables.reader import TableError

BEST_6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def nb201_rows(data_dir: Path) -> dict[int, dict[str, str]]:
    """The raw CSV rows by arch_index, read independently of the code under test."""
    with open(data_dir / NB201_FILE, newline="") as f:
        return {int(row["arch_index"]): row for row in csv.DictReader(f)}


def test_table_loads(data_dir: Path) -> None:
    nb201 = load_nb201_table(data_dir)
    assert len(nb201) == 15_625 and len(set(nb201.arch_strs)) == 15_625
    assert BEST_6111 in nb201 and "|none~0|" not in nb201
    assert not nb201.columns["c10_test_acc_200ep"].flags.writeable
    assert repr(nb201) == f"NB201Table({str(data_dir / NB201_FILE)!r}, rows=15625)"


@pytest.mark.parametrize("arch_index", [6111, 13714])
def test_known_optima(data_dir: Path, nb201_rows, arch_index: int) -> None:
    row = nb201_rows[arch_index]
    metrics = NB201Evaluator(data_dir)(row["arch_str"])
    assert metrics["test_accuracy"] == pytest.approx(0.9437, abs=5e-5)
    assert metrics["accuracy"] == pytest.approx(float(row["c10valid_valid_acc_12ep"]) / 100)
    assert metrics["arch_index"] == arch_index
    assert (metrics["params"], metrics["flops"]) == network_cost(row["arch_str"])


def test_optimum_of_the_reward_and_of_the_test_accuracy(data_dir: Path, nb201_rows) -> None:
    evaluator = NB201Evaluator(data_dir)
    best_reward = evaluator.best("accuracy")
    assert best_reward.arch == nb201_rows[13714]["arch_str"]
    assert best_reward.value == pytest.approx(0.84892)
    best_test = evaluator.best()
    assert best_test.arch in (nb201_rows[6111]["arch_str"], nb201_rows[13714]["arch_str"])
    assert best_test.value == pytest.approx(0.9437333, abs=1e-6)
    assert evaluator.optimum() == {
        "reward": best_reward.value,
        "test_accuracy": best_test.value,
        "arch": best_reward.arch,
    }
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
    evaluator = NB201Evaluator(data_dir, dataset=dataset, metric=metric)
    for arch_index in (0, 857, 9930):
        row = nb201_rows[arch_index]
        metrics = evaluator(row["arch_str"])
        assert metrics["accuracy"] == pytest.approx(float(row[reward_column]) / 100)
        assert metrics["test_accuracy"] == pytest.approx(float(row[test_column]) / 100)


def test_dataset_and_metric_errors(data_dir: Path) -> None:
    for dataset in ("cifar100", "ImageNet16-120"):
        with pytest.raises(ValueError, match=f"200-epoch validation accuracy for 'cifar10' only.*{dataset}"):
            NB201Evaluator(data_dir, dataset=dataset, metric="200ep")
    with pytest.raises(ValueError, match=r"expected dataset in .*got 'cifar-10' \(did you mean 'cifar10'"):
        NB201Evaluator(data_dir, dataset="cifar-10")
    with pytest.raises(ValueError, match="expected metric in .*got '50ep'"):
        NB201Evaluator(data_dir, metric="50ep")


def test_fidelities_are_the_metrics_of_the_dataset(data_dir: Path) -> None:
    evaluator = NB201Evaluator(data_dir)
    assert evaluator.fidelities == ("12ep", "200ep") and evaluator.fidelity == "12ep"
    long = evaluator.with_fidelity("200ep")
    assert (long.metric, long.dataset, evaluator.metric) == ("200ep", "cifar10", "12ep")
    assert long(BEST_6111)["accuracy"] != evaluator(BEST_6111)["accuracy"]
    assert long.fingerprint != evaluator.fingerprint
    cifar100 = NB201Evaluator(data_dir, dataset="cifar100")
    assert cifar100.fidelities == ("12ep",)
    with pytest.raises(
        ValueError, match=r"expected a fidelity in \('12ep',\) for dataset 'cifar100', got '200ep'"
    ):
        cifar100.with_fidelity("200ep")


def test_transfer_reports_every_dataset(data_dir: Path, nb201_rows) -> None:
    row = nb201_rows[6111]
    assert NB201Evaluator(data_dir, dataset="cifar100").transfer(row["arch_str"]) == {
        "cifar10": pytest.approx(float(row["c10_test_acc_200ep"]) / 100),
        "cifar100": pytest.approx(float(row["c100_test_acc_200ep"]) / 100),
        "ImageNet16-120": pytest.approx(float(row["in16_test_acc_200ep"]) / 100),
    }


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_malformed_csv(tmp_path: Path, data_dir: Path) -> None:
    good = (data_dir / NB201_FILE).read_text().splitlines()
    header = good[0].split(",")

    def expect(lines: list[str], match: str) -> None:
        path = write(tmp_path / NB201_FILE, "\n".join(lines) + "\n")
        with pytest.raises(TableError, match=match) as caught:
            NB201Table.from_file(path)
        message = str(caught.value)
        assert str(path) in message and "NAS_GYM_DATA" in message
        assert "c10valid_valid_acc_12ep" in message and "arch_str" in message

    def with_value(line: int, column: str, value: str) -> list[str]:
        lines = good[:]
        fields = lines[line - 1].split(",")
        fields[header.index(column)] = value
        lines[line - 1] = ",".join(fields)
        return lines

    without = [i for i, c in enumerate(header) if c != "c10_test_acc_200ep"]
    expect(
        [",".join(line.split(",")[i] for i in without) for line in good], "got no column c10_test_acc_200ep"
    )
    expect(good[:100], "got 99 rows")
    expect(
        with_value(43, "c10valid_valid_acc_12ep", "n/a"),
        "got 'n/a' in column c10valid_valid_acc_12ep on line 43",
    )
    expect(
        with_value(43, "c10valid_valid_acc_12ep", "nan"),
        "got 'nan' in column c10valid_valid_acc_12ep on line 43",
    )
    expect(
        with_value(9, "c100_test_acc_200ep", "101.5"),
        r"got a value outside 0..100 \(percent\) in column c100",
    )
    op = str((int(good[7].split(",")[header.index("op_1from0")]) + 1) % 5)
    expect(with_value(8, "op_1from0", op), "do not match arch_str .* on line 8")
    expect(good[:10] + [good[9]] + good[11:], "got the same arch_str on more than one row")
    expect(good[:5] + ["1,2"] + good[6:], "got 2 fields on line 6")
    with pytest.raises(TableError, match="got an empty file"):
        NB201Table.from_file(write(tmp_path / "empty.csv", ""))


def test_evaluator_pickles_small_and_gives_the_same_metrics(data_dir: Path) -> None:
    evaluator = NB201Evaluator(data_dir, dataset="cifar100")
    blob = pickle.dumps(evaluator)
    assert len(blob) < 1_000  # the table is not in it
    copy = pickle.loads(blob)
    assert copy(BEST_6111) == evaluator(BEST_6111)
    assert copy.fingerprint == evaluator.fingerprint and repr(copy) == repr(evaluator)


def test_fingerprints_separate_dataset_and_metric(data_dir: Path) -> None:
    fingerprints = {
        NB201Evaluator(data_dir).fingerprint,
        NB201Evaluator(data_dir, metric="200ep").fingerprint,
        NB201Evaluator(data_dir, dataset="cifar100").fingerprint,
    }
    assert len(fingerprints) == 3
    assert all(f.startswith("nasbench201-table:") for f in fingerprints)
