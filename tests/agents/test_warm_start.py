"""The zero-cost warm start of evolution and reinforce: screening by the proxy fidelity, the top
candidates evaluated next, the same history on a single env and a vector env, checkpoints, the
selection of a screened search, and argument checks."""

from __future__ import annotations

import pytest

from agents import make_agent
from agents.evolution import EvolutionAgent
from agents.hyperband import select_record
from agents.reinforce import ReinforceAgent
from agents.warm_start import WarmStart, as_warm_start
from nas_gym.envs import NASEnv
from nas_gym.envs.vector import NASVectorEnv
from tests.helpers.fakes import hash_accuracy
from tests.helpers.fidelities import Fidelities, quality

WARM = {"fidelity": "proxy", "candidates": 30, "top": 5}


def _env() -> NASEnv:
    return NASEnv("nb201", Fidelities("low"))


def _vector(num_envs: int) -> NASVectorEnv:
    return NASVectorEnv(
        "NASBench201-v0", num_envs=num_envs, evaluator=Fidelities("low"), autoreset_mode="Disabled"
    )


def _trace(history: list[dict]) -> list[tuple[str, str]]:
    return [(r["arch"], r["fidelity"]) for r in history]


def test_evolution_screens_then_evaluates_the_top_then_evolves_from_them():
    agent = EvolutionAgent(seed=0, population_size=5, sample_size=2, warm_start=WARM)
    history = agent.search(_env(), episodes=35).history
    screened, top = history[:30], history[30:]
    assert [r["fidelity"] for r in screened] == ["proxy"] * 30 and len({r["arch"] for r in screened}) == 30
    assert all(r["accuracy"] is None and r["train_seconds"] == 0.01 for r in screened)
    best = sorted(screened, key=lambda r: r["reward"])[-5:]  # worst of the five first
    assert [r["arch"] for r in top] == [r["arch"] for r in best]
    assert [r["fidelity"] for r in top] == ["low"] * 5
    space = agent.space
    assert [space.format(m.arch) for m in agent.population] == [r["arch"] for r in top]
    # From here on the agent mutates the members of that first generation.
    (child,) = agent.search(_env(), episodes=1).history
    assert child["fidelity"] == "low" and child["arch"] not in {r["arch"] for r in history}


def test_a_perfect_proxy_puts_the_best_screened_architecture_in_the_first_generation():
    """The fake proxy ranks like the true quality, so the warm start's first evaluations are the
    best of 30 random cells, which a cold start meets only by luck."""
    warm = EvolutionAgent(seed=1, population_size=5, sample_size=2, warm_start=WARM).search(
        _env(), episodes=35
    )
    cold = EvolutionAgent(seed=1, population_size=5, sample_size=2).search(_env(), episodes=5)
    best_screened = max(quality(r["arch"]) for r in warm.history[:30])
    assert max(quality(r["arch"]) for r in warm.history[30:]) == best_screened
    assert best_screened > max(quality(r["arch"]) for r in cold.history)


@pytest.mark.parametrize("agent_name", ["evolution", "reinforce"])
def test_a_vector_env_plays_the_same_warm_started_search_as_a_single_env(agent_name):
    single = make_agent(agent_name, seed=2, warm_start=WARM)
    batched = make_agent(agent_name, seed=2, warm_start=WARM)
    one = single.search(_env(), episodes=40).history
    many = batched.search(_vector(batched.num_envs), episodes=40).history
    assert _trace(one) == _trace(many)
    assert [r["fidelity"] for r in one[:30]] == ["proxy"] * 30 and one[30]["fidelity"] == "low"


def test_reinforce_learns_from_the_real_rewards_of_the_top_candidates_only():
    warm = ReinforceAgent(seed=4, warm_start=WARM)
    history = warm.search(_env(), episodes=35).history
    real = [r["reward"] for r in history[30:]]
    # Five real evaluations at two per update: two updates, the fifth waits in the batch; the
    # screening scores (hundreds) never reach the baseline, an average of the real rewards.
    assert warm.updates == 2 and [e["reward"] for e in warm.batch] == [real[-1]]
    baseline = real[0]
    for reward in real[1:]:
        baseline = 0.95 * baseline + 0.05 * reward
    assert warm.baseline == pytest.approx(baseline)
    assert [e for e in warm.search(_env(), episodes=2).history if e["fidelity"] != "low"] == []


def test_a_checkpoint_mid_screening_continues_the_same_search():
    whole = EvolutionAgent(seed=5, population_size=5, sample_size=2, warm_start=WARM).search(
        _env(), episodes=45
    )
    first = EvolutionAgent(seed=5, population_size=5, sample_size=2, warm_start=WARM)
    part = first.search(_env(), episodes=12).history
    restored = EvolutionAgent(seed=5, population_size=5, sample_size=2, warm_start=WARM)
    restored.load_state_dict(first.state_dict())
    rest = restored.search(_env(), episodes=33).history
    assert _trace(part + rest) == _trace(whole.history)
    with pytest.raises(ValueError, match=r"expected a state with warm start None \(this agent's\), got \{"):
        EvolutionAgent(seed=5, population_size=5, sample_size=2).load_state_dict(first.state_dict())


def test_a_screened_search_selects_by_the_real_reward_not_the_proxy_score():
    env = _env()
    history = (
        EvolutionAgent(seed=6, population_size=5, sample_size=2, warm_start=WARM)
        .search(env, episodes=40)
        .history
    )
    assert max(history, key=lambda r: r["reward"])["fidelity"] == "proxy"  # a score of hundreds
    selected = select_record(history, env.fidelities)
    assert selected["fidelity"] == "low"
    assert selected["reward"] == max(r["reward"] for r in history if r["fidelity"] == "low")


def test_warm_start_arguments_are_checked():
    assert as_warm_start(True) == WarmStart() and as_warm_start(None) is None and as_warm_start(False) is None
    assert as_warm_start({"candidates": 50}) == WarmStart(candidates=50)
    with pytest.raises(
        ValueError,
        match=r"expected warm_start keys among \['candidates', 'fidelity', 'top'\], got \['fidelty'\]",
    ):
        as_warm_start({"fidelty": "synflow"})
    with pytest.raises(ValueError, match=r"expected top as an int in 1\.\.10, got 20"):
        WarmStart(candidates=10)
    with pytest.raises(TypeError, match=r"expected warm_start as None, a bool, a dict of WarmStart fields"):
        make_agent("reinforce", seed=0, warm_start="synflow")
    # A fidelity that the env lacks is refused by the env at the first screening episode.
    agent = EvolutionAgent(seed=0, warm_start=True)
    with pytest.raises(ValueError, match=r"expected no fidelity: this backend"):
        agent.search(NASEnv("nb201", hash_accuracy), episodes=1)
