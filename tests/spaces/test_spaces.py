"""Search spaces: exact sizes, string round trips, sampling, mutation, masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas_gym.spaces import InvalidArchitectureError, MacroSpace, NB201Space, SeedSpace, make_space


def test_exact_sizes() -> None:
    assert SeedSpace().size == sum(8**n for n in range(1, 11)) == 1_227_133_512
    assert NB201Space().size == 5**6 == 15_625
    assert MacroSpace().size == 3**8 == 6_561
    assert SeedSpace(max_layers=2).size == 8 + 64


def test_size_counts_distinct_architectures_by_enumeration() -> None:
    """Enumerate every action sequence of a small seed space: each is a distinct architecture."""
    space = SeedSpace(max_layers=3)
    seen = set()
    stack: list[tuple[int, ...]] = [()]
    while stack:
        prefix = stack.pop()
        decision = space.next_decision(prefix)
        if decision is None:
            seen.add(space.format(prefix))
            continue
        stack.extend(prefix + (c,) for c in range(decision.num_choices))
    assert len(seen) == space.size == 8 + 64 + 512


@pytest.mark.parametrize("name", ["seed", "nb201", "macro"])
def test_round_trip_of_samples(name: str) -> None:
    space = make_space(name)
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        text = space.format(arch)
        assert space.parse(text) == arch
        assert space.format(space.parse(text)) == text


def test_nb201_round_trip_is_exhaustive() -> None:
    space = NB201Space()
    strings = {space.format(arch) for arch in itertools.product(range(5), repeat=6)}
    assert len(strings) == 15_625
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert space.format(space.parse(best)) == best
    assert space.parse(best) == (3, 3, 3, 1, 3, 2)


def test_seed_strings() -> None:
    space = SeedSpace()
    arch = space.parse("k3-relu-max|k5-sigmoid-avg")
    assert arch == (1, 0, 0, 0, 1, 1, 1)
    assert space.depth_of(arch) == 2
    assert space.describe(arch)[1] == ("layer1.kernel", "k3")


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("seed", "", "expected 1 to 10 layers"),
        ("seed", "|".join(["k3-relu-max"] * 11), "expected 1 to 10 layers"),
        ("seed", "k7-relu-max", "expected layer 1 as <kernel>-<activation>-<pool>"),
        ("seed", "k3-tanh-max", "activation in"),
        ("nb201", "|none~0|", "expected 3 nodes"),
        ("nb201", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "expected an operation"),
        ("nb201", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "expected node 1"),
        ("macro", "2221222", "expected 8 digits"),
        ("macro", "22212223", "expected 8 digits"),
    ],
)
def test_parse_errors(name: str, text: str, match: str) -> None:
    with pytest.raises(InvalidArchitectureError, match=match):
        make_space(name).parse(text)


def test_validate_errors() -> None:
    space = SeedSpace()
    with pytest.raises(InvalidArchitectureError, match="expected a complete architecture"):
        space.validate((1, 0, 0))
    with pytest.raises(
        InvalidArchitectureError, match="expected a choice in 0..1 for decision 'layer1.kernel'"
    ):
        space.validate((0, 2, 0, 0))
    with pytest.raises(InvalidArchitectureError, match="expected at most 4 decisions"):
        space.validate((0, 0, 0, 0, 1))


def test_unknown_preset_suggests() -> None:
    with pytest.raises(ValueError, match=r"got 'nb210' \(did you mean 'nb201'\?\)"):
        make_space("nb210")
    with pytest.raises(TypeError, match="expected a preset name"):
        make_space(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["seed", "nb201", "macro"])
def test_mutation_changes_exactly_one_decision(name: str) -> None:
    space = make_space(name)
    rng = np.random.default_rng(1)
    for _ in range(300):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert child != parent
        assert space.validate(child) == child
        if len(child) == len(parent):
            assert sum(a != b for a, b in zip(parent, child)) == 1
        else:  # the depth changed: the layers both have are kept
            assert child[0] != parent[0]
            common = min(len(child), len(parent))
            assert child[1:common] == parent[1:common]


def test_mutation_does_not_modify_input_and_is_seeded() -> None:
    space = SeedSpace()
    parent = list(space.sample(np.random.default_rng(0)))
    copy = list(parent)
    a = space.mutate(parent, np.random.default_rng(5))
    b = space.mutate(parent, np.random.default_rng(5))
    assert parent == copy and a == b


def test_sample_is_uniform_per_decision() -> None:
    space = SeedSpace()
    rng = np.random.default_rng(0)
    depths = np.bincount([space.depth_of(space.sample(rng)) for _ in range(5000)], minlength=11)[1:]
    assert depths.min() > 400 and depths.max() < 600


def test_action_mask() -> None:
    space = SeedSpace()
    assert space.num_actions == 10
    assert space.action_mask(()).all()
    mask = space.action_mask((0,))
    assert mask.tolist() == [True, True] + [False] * 8
    assert not space.action_mask((0, 0, 0, 0)).any()


@pytest.mark.parametrize("arch", ["k3-relu-max", "|".join(["k5-sigmoid-avg"] * 10)])
def test_seed_models_build_and_run(arch: str) -> None:
    torch = pytest.importorskip("torch")
    model = SeedSpace().build_model(arch)
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_seed_pooling_is_identity_at_one_pixel() -> None:
    torch = pytest.importorskip("torch")
    model = SeedSpace().build_model("|".join(["k3-relu-max"] * 10))
    pools = [m for m in model if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 5  # 32 -> 1 after five halvings; layers 6-10 do not pool


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_the_deepest_seed_network_runs_on_every_budget_resolution(resolution: int) -> None:
    import torch

    space = make_space("seed")
    deepest = "|".join(["k3-relu-max"] * space.max_layers)
    model = space.build_model(deepest, width=0.5, resolution=resolution)
    assert model(torch.zeros(2, 3, resolution, resolution)).shape == (2, 10)
