"""run_search: its configuration is the caller's and stays so, a refused set-up leaves nothing
behind, an existing run needs resume, and a foreign store is left alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from nas_gym.core.checks import ArgumentTypeError
from nas_gym.experiments.config import SearchConfig
from nas_gym.experiments.folder import CONFIG, STORE, RunFolder, RunFolderError, resume_config
from nas_gym.experiments.runs import run_search
from tests.experiments.conftest import HASH_ENV, CountingHash


def _config(episodes: int, **changes) -> SearchConfig:
    return SearchConfig(env=HASH_ENV, agent="random", episodes=episodes, seed=1, **changes)


def test_run_search_leaves_the_callers_config_alone(tmp_path: Path, data_dir: Path) -> None:
    # NASBench201-v0 takes an evaluation seed: the run adds it (and the store) to its own copy of
    # the env options, never to the caller's.
    env_kwargs = {"dataset": "cifar100"}
    config = SearchConfig("NASBench201-v0", "random", episodes=3, seed=2, env_kwargs=env_kwargs)
    before = config.to_dict()
    run_search(config, tmp_path / "run")
    assert config.to_dict() == before and env_kwargs == {"dataset": "cifar100"}
    assert json.loads((tmp_path / "run" / CONFIG).read_text()) == before
    resumed = resume_config(tmp_path / "run", {"episodes": 5})
    run_search(resumed, tmp_path / "run", resume=True)
    assert resumed.episodes == 5 and config.to_dict() == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.episodes = 10  # type: ignore[misc]


@pytest.mark.parametrize("name", ["episodes", "num_envs", "max_episodes", "seed"])
def test_a_bool_is_not_a_count(name: str) -> None:
    kind = "a non-negative int" if name == "seed" else "a positive int or None"
    with pytest.raises(ArgumentTypeError, match=rf"expected {name} as {kind}, got True"):
        SearchConfig("NASBench201-v0", "random", **{"episodes": 3, name: True})


def test_resume_refuses_a_bool_for_the_episodes(tmp_path: Path, hash_env: CountingHash) -> None:
    run_search(_config(2), tmp_path / "run")
    with pytest.raises(TypeError, match=r"expected episodes as a positive int or None, got True"):
        resume_config(tmp_path / "run", {"episodes": True})
    with pytest.raises(ValueError, match=r"expected episodes or budget_seconds, got neither"):
        SearchConfig("NASBench201-v0", "random")


def test_a_refused_set_up_leaves_nothing_behind(tmp_path: Path, data_dir: Path) -> None:
    bad = SearchConfig("NASBench201-v0", "random", episodes=2, env_kwargs={"dataset": "cifar1000"})
    with pytest.raises(
        ValueError, match=r"expected dataset in .*got 'cifar1000' \(did you mean 'cifar100'\?\)"
    ):
        run_search(bad, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="expected dataset in"):
        run_search(bad, existing)
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]  # no store, no config


def test_existing_run_needs_resume_and_foreign_store_is_untouched(
    tmp_path: Path, hash_env: CountingHash
) -> None:
    out = tmp_path / "run"
    run_search(_config(2), out)
    with pytest.raises(RunFolderError, match="pass --resume"):
        run_search(_config(2), out)
    with pytest.raises(RunFolderError, match=f"expected a run folder with {CONFIG} to resume, got none"):
        run_search(_config(2), tmp_path / "nothing", resume=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / STORE).write_bytes(b"not a database at all")
    with pytest.raises(RunFolderError, match="not a nas-gym evaluation store"):
        run_search(_config(2), other)
    assert (other / STORE).read_bytes() == b"not a database at all"
    assert not RunFolder(other).has_run()


def test_resume_refuses_other_settings(tmp_path: Path, hash_env: CountingHash) -> None:
    run_search(_config(2), tmp_path / "run")
    with pytest.raises(RunFolderError, match=r"agent 'random' \(asked: 'evolution'\); seed 1 \(asked: 2\)"):
        resume_config(tmp_path / "run", {"agent": "evolution", "seed": 2})
