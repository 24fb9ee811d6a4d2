"""The parameters and multiply-adds of the NAS-Bench-201 cells: against the benchmark's published
ranges, against a direct count of single networks, and the cache (atomic, checked, recomputed)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from nas_gym.backends.tables import nb201_costs
from nas_gym.backends.tables.nb201_costs import (
    NB201Costs,
    cell_index,
    compute_nb201_costs,
    cost_cache_path,
    load_nb201_costs,
    network_cost,
)
from nas_gym.core.config import CACHE_ENV_VAR, resolve_cache_dir

ALL_CONV3 = (3,) * 6
BEST_6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"

# The ranges of NAS-Bench-201's own records (params in MB = millions, FLOPs in M), as exported from
# its v1.1 API files: the network is the same, so parameters match exactly. Its counter counts
# multiply-adds of convolutions and linear layers and adds the classifier's bias (num_classes).
PUBLISHED = {
    "cifar10": ((0.073306, 1.531546), (7.78305, 220.11969), 10),
    "cifar100": ((0.079156, 1.537396), (7.7889, 220.12554), 100),
    "ImageNet16-120": ((0.080456, 1.538696), (1.9534, 55.03756), 120),
}


@pytest.fixture(scope="module")
def cifar10_costs() -> NB201Costs:
    return compute_nb201_costs()


@pytest.fixture
def computed(monkeypatch, cifar10_costs: NB201Costs) -> list[tuple[int, int]]:
    """The settings each computation was asked for; the computation returns the module's costs
    (relabelled), so that cache tests do not build 25 networks each."""
    calls: list[tuple[int, int]] = []

    def compute(num_classes: int = 10, resolution: int = 32) -> NB201Costs:
        calls.append((num_classes, resolution))
        return NB201Costs(cifar10_costs.params, cifar10_costs.flops, num_classes, resolution)

    monkeypatch.setattr(nb201_costs, "compute_nb201_costs", compute)
    return calls


@pytest.fixture
def cache(tmp_path: Path, monkeypatch, computed: list[tuple[int, int]]) -> Path:
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(nb201_costs, "_MEMO", {})
    return tmp_path


@pytest.mark.parametrize("dataset", list(PUBLISHED))
def test_ranges_match_the_published_figures(dataset: str) -> None:
    (params_low, params_high), (flops_low, flops_high), bias = PUBLISHED[dataset]
    costs = compute_nb201_costs(*nb201_costs.COST_SETTINGS[dataset])
    assert (costs.params.min(), costs.params.max()) == (round(params_low * 1e6), round(params_high * 1e6))
    assert (costs.flops.min() + bias) / 1e6 == pytest.approx(flops_low, abs=1e-5)
    assert (costs.flops.max() + bias) / 1e6 == pytest.approx(flops_high, abs=1e-5)


def test_extremes_and_known_cells(cifar10_costs: NB201Costs) -> None:
    # The all-3x3 cell is the largest; a cell of none, skip and pooling has the bare skeleton.
    assert cifar10_costs.of(ALL_CONV3) == (1_531_546, 220_119_680)
    assert cifar10_costs.of((0, 1, 4, 1, 0, 4)) == (73_306, 7_783_040)
    assert int(cifar10_costs.params.argmax()) == cell_index(ALL_CONV3)
    # Costs depend on how many 1x1 and 3x3 convolutions the cell has: 28 pairs of counts.
    assert len(set(zip(cifar10_costs.params.tolist(), cifar10_costs.flops.tolist()))) == 28


def test_the_edge_sum_equals_a_count_of_the_whole_network(cifar10_costs: NB201Costs) -> None:
    rng = np.random.default_rng(0)
    cells = [tuple(int(c) for c in rng.integers(0, 5, 6)) for _ in range(4)] + [BEST_6111]
    for cell in cells:
        assert cifar10_costs.of(cell) == network_cost(cell)


def test_cell_index_is_the_base_5_order_of_the_codes() -> None:
    codes = list(itertools.product(range(5), repeat=6))
    assert [cell_index(c) for c in codes[:7]] == list(range(7))
    assert cell_index(np.array(codes)).tolist() == list(range(5**6))


def test_the_cache_is_written_once_and_read_back(
    cache: Path, computed: list[tuple[int, int]], cifar10_costs: NB201Costs
) -> None:
    path = cost_cache_path()
    assert path.parent.parent == cache and not path.exists()
    first = load_nb201_costs()
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    data = json.loads(path.read_text())
    assert data["version"] == nb201_costs.COSTS_VERSION and data["num_classes"] == 10
    assert data["sha256"] == first.checksum() == cifar10_costs.checksum()
    assert load_nb201_costs() is first  # from memory
    nb201_costs._MEMO.clear()
    assert load_nb201_costs().checksum() == first.checksum()  # from the file
    assert computed == [(10, 32)]


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # a torn file
        lambda text: text.replace('"params": [', '"params": [1, ', 1),  # one value too many
        lambda text: text.replace("73306", "73307", 1),  # a flipped value: the checksum fails
        lambda text: text.replace('"version": 1', '"version": 0', 1),  # an older version
    ],
)
def test_a_corrupt_cache_is_recomputed(
    cache: Path, computed: list[tuple[int, int]], cifar10_costs: NB201Costs, damage
) -> None:
    load_nb201_costs()
    path = cost_cache_path()
    path.write_text(damage(path.read_text()))
    nb201_costs._MEMO.clear()
    with pytest.warns(
        RuntimeWarning, match="recomputing the NAS-Bench-201 costs: the cache file .* unusable"
    ):
        costs = load_nb201_costs()
    assert costs.checksum() == cifar10_costs.checksum() and len(computed) == 2
    assert json.loads(path.read_text())["sha256"] == cifar10_costs.checksum()  # replaced


def test_an_unwritable_cache_folder_only_warns(tmp_path: Path, monkeypatch, computed: list) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(nb201_costs, "_MEMO", {})
    with pytest.warns(RuntimeWarning, match="could not cache the NAS-Bench-201 costs"):
        costs = load_nb201_costs("cifar100", cache_dir=blocker)
    assert computed == [(100, 32)] and costs.num_classes == 100


def test_cache_folder_defaults(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert resolve_cache_dir() == tmp_path / "nas_gym"
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "mine"))
    assert resolve_cache_dir() == tmp_path / "mine"
    assert resolve_cache_dir("~/x") == Path("~/x").expanduser()


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"expected dataset in .*got 'cifar-10'.*did you mean 'cifar10'"):
        load_nb201_costs("cifar-10")
    with pytest.raises(ValueError, match="expected 15625 costs, got an array of shape"):
        NB201Costs(np.ones(3), np.ones(3), 10, 32)
