"""Junk input never crashes the env or the parsers, and never corrupts an episode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas_gym.envs import InvalidActionError, NASEnv
from nas_gym.spaces import InvalidArchitectureError, make_space
from tests.helpers.fakes import hash_accuracy

junk = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-3, 12), max_size=3),
    st.builds(np.array, st.lists(st.integers(-3, 12), max_size=3)),
    st.builds(np.int64, st.integers(-(2**40), 2**40)),
    st.builds(np.float32, st.floats(width=32)),
    st.complex_numbers(allow_nan=True),
    st.binary(max_size=4),
)


@pytest.mark.parametrize("space", ["seed", "nb201", "macro"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(junk, min_size=1, max_size=40))
def test_junk_actions_raise_cleanly_and_leave_the_episode_intact(space: str, actions: list) -> None:
    env = NASEnv(space, evaluator=hash_accuracy)
    obs, info = env.reset(seed=0)
    for action in actions:
        before = (obs.copy(), tuple(info["arch_prefix"]))
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except InvalidActionError:
            assert (env._observation() == before[0]).all()
            assert (env.action_masks() == env.space.action_mask(before[1])).all()
            continue
        except RuntimeError as exc:  # stepping an ended episode
            assert "expected reset" in str(exc)
            obs, info = env.reset()
            continue
        assert obs in env.observation_space
        assert len(info["arch_prefix"]) == len(before[1]) + 1
        if terminated:
            assert env.space.parse(info["arch"]) == tuple(info["arch_prefix"])
            assert reward == pytest.approx(hash_accuracy(info["arch"])["accuracy"])
            obs, info = env.reset()


@pytest.mark.parametrize("space", ["seed", "nb201", "macro"])
@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=120), st.text(alphabet="k35-relumaxsigmodvg|", max_size=60)))
def test_parse_accepts_only_canonical_strings(space: str, text: str) -> None:
    s = make_space(space)
    try:
        arch = s.parse(text)
    except InvalidArchitectureError:
        return
    assert s.format(arch) == text
