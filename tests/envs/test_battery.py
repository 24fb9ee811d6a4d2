"""One battery over every registered id: Gymnasium's and SB3's env checkers, seeding, pickling, rendering."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.env_checker import data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_gym
from nas_gym.registration import ENVS
from tests.helpers.fakes import hash_accuracy


@pytest.fixture(params=sorted(ENVS))
def env_id(request) -> str:
    return request.param


@pytest.fixture
def make(env_id: str, request) -> Any:
    """``make(**extra)``: the env of ``env_id`` with an instant reward (CIFAR-10 training is replaced
    by a hash; the tables are read from the data folder, skipped without it)."""
    kwargs: dict[str, Any] = {}
    if env_id == "NASCifar-v0":
        kwargs["evaluator"] = hash_accuracy
    else:
        kwargs["data_dir"] = request.getfixturevalue("data_dir")

    def _make(**extra: Any) -> gym.Env:
        return gym.make(env_id, **kwargs, **extra)

    return _make


def rollout(env: gym.Env, seed: int, episodes: int = 3) -> list[tuple[Any, ...]]:
    """Observations, rewards, flags and infos of ``episodes`` episodes of seeded random actions
    (first reset seeded, later ones not: the env's own RNG must carry the seed on)."""
    steps: list[tuple[Any, ...]] = []
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    steps.append((obs, _plain(info)))
    for _ in range(episodes):
        terminated = truncated = False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            steps.append((obs, reward, terminated, truncated, _plain(info)))
        obs, info = env.reset()
        steps.append((obs, _plain(info)))
    return steps


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    # Wall times differ from run to run; everything else must not.
    return {k: v for k, v in info.items() if not k.endswith("seconds")}


def test_every_id_is_registered_by_import() -> None:
    assert set(ENVS) <= set(gym.registry) and nas_gym.__version__


def test_gymnasium_env_checker(make) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure here
        gym_check_env(make().unwrapped, skip_render_check=True)


def test_sb3_env_checker(make) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(make(), warn=True)


def test_same_seed_same_rollout_other_seed_other_rollout(make) -> None:
    first, again, other = rollout(make(), 3), rollout(make(), 3), rollout(make(), 4)
    assert data_equivalence(first, again)
    assert not data_equivalence(first, other)


def test_a_pickled_env_continues_exactly(make) -> None:
    env = make()
    env.action_space.seed(0)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    copy = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    assert data_equivalence(env.step(action)[:4], copy.step(action)[:4])
    # The copy's random state is its own from here on, equal to the original's.
    assert data_equivalence(env.unwrapped.np_random.random(), copy.unwrapped.np_random.random())


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render_modes(make, mode: str) -> None:
    env = make(render_mode=mode)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    if mode == "ansi":
        assert isinstance(frame, str) and frame.strip()
    else:
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0


def test_action_mask_matches_the_valid_actions(make) -> None:
    env = make()
    obs, info = env.reset(seed=0)
    terminated = False
    while not terminated:
        mask = info["action_mask"]
        assert mask.dtype == bool and mask.shape == (env.action_space.n,) and mask.any()
        obs, _, terminated, _, info = env.step(int(np.flatnonzero(mask)[0]))


def test_docstring_is_the_manual(env_id: str) -> None:
    """Each id's class documents its own arguments and versions; the sections every id shares
    live in the docstring of its base, :class:`~nas_gym.envs.NASEnv`."""
    cls = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
    own = cls.__doc__ or ""
    shared = "".join(base.__doc__ or "" for base in cls.__mro__[1:])
    for section in ("## Arguments", "## Version History", "Example"):
        assert section in own, f"{env_id}: no {section!r} in its docstring"
    for section in ("Action Space", "Observation Space", "Rewards", "Fidelity", "Episode End", "Info"):
        assert f"## {section}" in shared, f"{env_id}: no {section!r} section in the manual"


def test_registered_ids_match_the_contract() -> None:
    contract = Path(__file__).resolve().parents[3] / "shared" / "CONTRACT.md"
    if not contract.exists():
        pytest.skip("no ../shared/CONTRACT.md beside the checkout")
    text = contract.read_text()
    assert all(env_id in text for env_id in ENVS)
