"""The environment every nas-gym id is built on: one step = one architecture decision."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from nas_gym.core.errors import did_you_mean
from nas_gym.envs import render
from nas_gym.evaluation.objectives import Objective, VectorObjective, make_objective, make_vector_objective
from nas_gym.evaluation.runner import EvaluationRunner, Evaluator
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.parallel.executors import Executor
from nas_gym.parallel.spec import make_executor
from nas_gym.spaces import SearchSpace, make_space

Fidelity = str | Mapping[str, Any]
"""A fidelity of ``reset(options={"fidelity": F})``: a budget name or dict (``NASCifar-v0``),
``"12ep"`` or ``"200ep"`` (``NASBench201-v0``)."""


TEST_PREFIX = "test_"
"""Metrics whose key starts with this come from the test split: reported, never rewarded."""


class InvalidActionError(ValueError):
    """An action outside ``Discrete(n)`` or of a type that is not an integer."""


def as_action(action: Any, n: int) -> int:
    """``action`` as a Python int in ``0..n-1``; raises :class:`InvalidActionError` otherwise."""
    value = action
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise InvalidActionError(
                f"expected one integer action in 0..{n - 1}, got an array of shape {value.shape}"
            )
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidActionError(
            f"expected an integer action in 0..{n - 1} (Discrete({n})), got {action!r} of type "
            f"{type(action).__name__}"
        )
    value = int(value)
    if not 0 <= value < n:
        raise InvalidActionError(f"expected an action in 0..{n - 1} (Discrete({n})), got {value}")
    return value


class NASEnv(gym.Env[np.ndarray, np.int64]):
    """Neural architecture search as an episode: each step takes one architecture decision, the
    last step evaluates the architecture.

    This is the class behind ``NASCifar-v0``, ``NASBench201-v0`` and ``NASBenchMacro-v0``; they
    differ only in the default space and the evaluator (the reward backend). Use it directly to
    search any :class:`~nas_gym.spaces.SearchSpace` with any evaluator.

    ## Action Space

    ``Discrete(n)``, ``n`` = the largest number of choices of any decision of the space. The
    choices valid at each step are ``info["action_mask"]`` (also ``env.action_masks()``, which
    sb3-contrib's ``MaskablePPO`` reads): the first ``k`` actions when the current decision has
    ``k`` choices.

    **Masked actions** (``k <= a < n``) never raise: action ``a`` takes choice ``a % k``. Every
    action therefore maps to a valid choice and an agent that knows no masks (vanilla PPO, SB3's
    ``check_env``) still learns. An action outside ``0..n-1``, or one that is not an integer,
    raises :class:`InvalidActionError`.

    ## Observation Space

    ``MultiDiscrete([c_0 + 1, ..., c_{L-1} + 1])`` with ``L`` = the longest episode and ``c_i``
    the most choices at position ``i``: entry ``i`` is 0 while decision ``i`` is not taken, else
    ``1 +`` its choice. SB3 one-hot encodes it for ``MlpPolicy``.

    ## Rewards

    0 on every step but the last. The last step returns the objective (``reward=``) of the
    architecture's metrics: by default the validation accuracy as a fraction in [0, 1] (for a
    zero-cost budget, its score). The objective is given the metrics without the test split's
    (keys ``test_*``). An evaluation that failed (status other than ``"ok"``) returns
    ``failure_reward`` (default 0).

    With ``objectives=("accuracy", "params", ...)`` the reward is a ``np.ndarray`` (float64), one
    component per objective in the order given, each to be maximised (MO-Gymnasium's convention):
    ``accuracy`` as a fraction, ``params`` as minus the parameters in millions, ``flops`` as minus
    the multiply-adds in millions (see :data:`~nas_gym.evaluation.objectives.VECTOR_COMPONENTS`);
    zeros on every step but the last. ``env.reward_space`` is the ``Box`` of the components:
    accuracy in [0, 1], a cost in [-largest, 0] where the backend knows its largest value (the
    tables, through their ``metric_range``), else in [-inf, 0]. MO-Gymnasium's wrappers apply,
    e.g. ``mo_gymnasium.wrappers.LinearReward(env, weight=np.array([1.0, 0.1]))`` for a scalar
    reward. A failed evaluation gets ``failure_reward`` for accuracy and its negated cost where
    the backend reported it, else ``-inf``. Gymnasium's passive env checker (on in ``gym.make``)
    warns once that the reward is not a float; ``mo_gymnasium.make(id, objectives=...)`` turns it
    off, as for MO-Gymnasium's own envs (or pass ``disable_env_checker=True``).

    ## Fidelity

    ``reset(options={"fidelity": F})`` evaluates that episode's architecture at fidelity ``F``
    (a budget of ``NASCifar-v0``, ``"12ep"`` or ``"200ep"`` on ``NASBench201-v0``, each charged
    its cost in ``train_seconds``); a ``reset`` without it returns to the env's default.
    :attr:`fidelities` lists the named ones, cheapest first; the last step's ``info["fidelity"]``
    names the one that ran. A fidelity that the backend does not have is refused at ``reset``.

    ## Episode End

    The episode terminates (``terminated=True``) on the step that completes the architecture;
    it never truncates. Episode length is the number of decisions of the architecture.

    ## Info

    Every step: ``action_mask``, ``decision`` (name of the next decision, ``None`` at the end),
    ``arch_prefix`` (choice indices so far). The last step adds ``arch`` (canonical string,
    accepted by ``space.parse``), ``accuracy``, ``params``, ``flops``, ``train_seconds``,
    ``cached``, ``status`` and whatever else the evaluator returns (``test_accuracy`` for tables).

    ## Arguments

    - ``space``: preset name or :class:`~nas_gym.spaces.SearchSpace`.
    - ``evaluator``: callable ``arch_string -> {"accuracy": ..., ...}`` (the reward backend).
    - ``reward``: ``"accuracy"``, another name of :data:`nas_gym.evaluation.objectives.OBJECTIVES`, or a
      callable ``metrics -> float``.
    - ``store``: path or :class:`~nas_gym.evaluation.store.EvaluationStore` of finished
      evaluations shared between processes; ``None`` keeps an in-process cache only.
    - ``render_mode``: ``None``, ``"ansi"`` (``render()`` returns the architecture as text, one
      decision a line), ``"human"`` (the same text printed to standard output on every step) or
      ``"rgb_array"`` (an RGB image of it, which ``RecordVideo`` records).
    - ``failure_reward``: the reward of an evaluation with status ``diverged``, ``oom`` or
      ``failed``.
    - ``executor``: where evaluations run: ``None`` (default: in this process), ``"processes"``,
      ``"ray"`` or an :class:`~nas_gym.parallel.executors.Executor` (a Ray cluster's GPU, say).
      One env evaluates one architecture at a time; for several at once use
      :class:`~nas_gym.envs.vector.NASVectorEnv`. An executor given by name is closed with the env.
    - ``objectives``: ``None`` (a scalar reward) or names of
      :data:`~nas_gym.evaluation.objectives.VECTOR_COMPONENTS` (a vector reward, see Rewards).

    ## Version History

    - v0: initial release.

    Example:
        >>> from nas_gym.envs import NASEnv
        >>> env = NASEnv("nb201", evaluator=lambda arch: {"accuracy": 0.5})
        >>> obs, info = env.reset(seed=0)
        >>> terminated = False
        >>> while not terminated:
        ...     obs, reward, terminated, truncated, info = env.step(0)
        >>> info["arch"], reward
        ('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|', 0.5)
    """

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        space: str | SearchSpace,
        evaluator: Evaluator,
        reward: str | Objective = "accuracy",
        store: EvaluationStore | str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
        failure_reward: float = 0.0,
        executor: Executor | str | None = None,
        objectives: Sequence[str] | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"expected render_mode in {[None, *self.metadata['render_modes']]}, got {render_mode!r}"
                f"{did_you_mean(str(render_mode), self.metadata['render_modes'])}"
            )
        self.space: SearchSpace = make_space(space)
        self.objective: Objective = make_objective(reward)
        self.vector_objective: VectorObjective | None = None
        if objectives is not None:
            if reward != "accuracy":
                raise ValueError(
                    f"expected either reward= or objectives=, got both (reward={reward!r}, "
                    f"objectives={objectives!r}): a vector reward has one component per objective"
                )
            self.vector_objective = make_vector_objective(objectives)
            # Table backends know their largest cost, which bounds the Box; others leave it -inf.
            low, high = self.vector_objective.bounds(
                getattr(evaluator, "metric_range", None), failure_reward=float(failure_reward)
            )
            self.reward_space = spaces.Box(low, high, dtype=np.float32)
        self.runner = EvaluationRunner(evaluator, self.space.name, store)
        self._runners: dict[str, EvaluationRunner] = {}
        """Runners of the fidelities asked for so far (the default is :attr:`runner`)."""
        self.render_mode = render_mode
        self.failure_reward = float(failure_reward)
        self._owns_executor = isinstance(executor, str)
        if isinstance(executor, str):
            executor = make_executor(executor)
        self.executor: Executor | None = executor
        self.action_space = spaces.Discrete(self.space.num_actions)
        self.observation_space = spaces.MultiDiscrete(np.array(self.space.slot_choices, dtype=np.int64) + 1)
        self._prefix: list[int] = []
        self._done = True
        self._awaiting: str | None = None  # a complete architecture, between the halves of step
        self._last_info: dict[str, Any] = {}
        self._fidelity: Fidelity | None = None
        self._episode_runner = self.runner

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        fidelity = None if options is None else options.get("fidelity")
        self._episode_runner = self.runner if fidelity is None else self.runner_for(fidelity)
        self._fidelity = fidelity
        self._prefix = []
        self._done = False
        self._awaiting = None
        self._last_info = self._step_info()
        return self._observation(), dict(self._last_info)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        arch = self.apply_decision(action)
        return self.finish_step(
            None if arch is None else self._evaluate_canonical(arch, self._episode_runner)
        )

    # ------------------------------------------------------------------ the two halves of step
    def apply_decision(self, action: Any) -> str | None:
        """The first half of :meth:`step`: check ``action`` and take it as the current decision.

        Returns the canonical string of the architecture when this decision completes it (it
        then awaits its evaluation), else ``None``. Pass the result to :meth:`finish_step`:
        ``None``, or the architecture's evaluation (:meth:`evaluate` or :meth:`evaluate_many`).
        :class:`~nas_gym.envs.vector.NASVectorEnv` uses the two halves to evaluate the architectures
        of several copies together.
        """
        a = as_action(action, self.space.num_actions)
        if self._done or self._awaiting is not None:
            raise RuntimeError("expected reset() before step(): the episode has ended")
        decision = self.space.next_decision(self._prefix)
        assert decision is not None  # the episode would have ended
        self._prefix.append(a % decision.num_choices)
        if self.space.next_decision(self._prefix) is None:
            self._awaiting = self.space.format(self._prefix)
        else:
            self._last_info = self._step_info()
        return self._awaiting

    def finish_step(
        self, evaluation: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """The second half of :meth:`step`: its return value, after :meth:`apply_decision`.

        ``evaluation`` is the evaluation of the architecture that :meth:`apply_decision`
        completed (with ``arch`` and ``cached``), ``None`` when it completed none.
        """
        if self._awaiting is None:
            if evaluation is not None:
                raise ValueError(
                    "expected no evaluation: the last decision did not complete an architecture, "
                    f"got one for {evaluation.get('arch')!r}"
                )
            if self._done:
                raise RuntimeError("expected reset() before step(): the episode has ended")
            self._render_human()
            return self._observation(), self._zero_reward(), False, False, dict(self._last_info)
        if evaluation is None or evaluation.get("arch") != self._awaiting:
            got = None if evaluation is None else evaluation.get("arch")
            raise ValueError(f"expected the evaluation of {self._awaiting!r}, got one of {got!r}")
        info = self._step_info()
        info.update(evaluation)
        info["fidelity"] = self.fidelity_name(self._fidelity)
        self._awaiting = None
        self._done = True
        self._last_info = info
        self._render_human()
        return self._observation(), self.reward_of(evaluation), True, False, dict(info)

    def render(self) -> str | np.ndarray | None:
        """The architecture so far: text for ``"ansi"``, an RGB image for ``"rgb_array"``;
        ``None`` without a render mode and for ``"human"`` (which prints on every step)."""
        if self.render_mode not in ("ansi", "rgb_array"):
            return None
        result = self._last_info if self._done and "arch" in self._last_info else None
        if self.render_mode == "ansi":
            return render.ansi(self.space, self._prefix, result)
        return render.rgb_array(self.space, self._prefix, result)

    def _render_human(self) -> None:
        if self.render_mode == "human":
            result = self._last_info if self._done and "arch" in self._last_info else None
            sys.stdout.write(render.ansi(self.space, self._prefix, result))
            sys.stdout.flush()

    # ------------------------------------------------------------------ masks and evaluation
    def action_masks(self) -> np.ndarray:
        """The valid actions of the current step (what ``info["action_mask"]`` holds)."""
        return self.space.action_mask(self._prefix)

    def evaluate(self, arch: Any) -> dict[str, Any]:
        """Metrics of a complete architecture (choice tuple or string), through the same cache,
        store and evaluator as an episode: ``arch``, ``cached`` and the evaluator's metrics."""
        return self._evaluate_canonical(self.space.format(self.space.validate(arch)), self.runner)

    def _evaluate_canonical(self, text: str, runner: EvaluationRunner) -> dict[str, Any]:
        # ``text`` is already canonical (it came from space.format): the step path skips the
        # second parse that evaluate() needs for user input.
        if self.executor is None:
            metrics, cached = runner.evaluate(text)
        else:
            ((metrics, cached),) = runner.evaluate_many([text], self.executor)
        return {**metrics, "arch": text, "cached": cached}

    def evaluate_many(
        self,
        archs: Sequence[Any],
        executor: Executor | None = None,
        runner: EvaluationRunner | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`evaluate` of each of ``archs``, in their order; the evaluations that the cache
        and store do not hold run together on ``executor`` (default: the env's own, else one
        after another here; :meth:`~nas_gym.evaluation.runner.EvaluationRunner.evaluate_many`).
        ``runner``: the fidelity's runner (default :attr:`runner`)."""
        texts = [self.space.format(self.space.validate(arch)) for arch in archs]
        results = (runner or self.runner).evaluate_many(texts, executor or self.executor)
        return [
            {**metrics, "arch": text, "cached": cached} for text, (metrics, cached) in zip(texts, results)
        ]

    # ------------------------------------------------------------------ fidelities
    @property
    def fidelities(self) -> tuple[str, ...]:
        """The named fidelities of the backend, cheapest first (``()`` when it has none)."""
        return tuple(getattr(self.runner.evaluator, "fidelities", ()))

    @property
    def episode_runner(self) -> EvaluationRunner:
        """The runner of the current episode's fidelity."""
        return self._episode_runner

    def fidelity_name(self, fidelity: Fidelity | None) -> Any:
        """What ``info["fidelity"]`` says of ``fidelity`` (``None``: the env's default)."""
        if fidelity is None:
            return getattr(self.runner.evaluator, "fidelity", None)
        return dict(fidelity) if isinstance(fidelity, Mapping) else fidelity

    def runner_for(self, fidelity: Fidelity) -> EvaluationRunner:
        """The evaluation path of ``fidelity`` (made on first use; same store and space)."""
        key = (
            json.dumps(fidelity, sort_keys=True, default=str)
            if isinstance(fidelity, Mapping)
            else str(fidelity)
        )
        if key not in self._runners:
            with_fidelity = getattr(self.runner.evaluator, "with_fidelity", None)
            if with_fidelity is None:
                raise ValueError(
                    f"expected no fidelity: this backend ({type(self.runner.evaluator).__name__}) has "
                    f"none, got options['fidelity']={fidelity!r}"
                )
            runner = EvaluationRunner(with_fidelity(fidelity), self.space.name, self.runner.store)
            self._runners[key] = runner
        return self._runners[key]

    def reward_of(self, metrics: Mapping[str, Any]) -> float | np.ndarray:
        """The reward of an evaluation: the objective, or ``failure_reward`` when it failed.

        The objective never sees the test split: keys starting with ``test_`` (the tables'
        ``test_accuracy``) are left out of the metrics it is given.
        """
        seen = {k: v for k, v in metrics.items() if not k.startswith(TEST_PREFIX)}
        failed = metrics["status"] != "ok"
        if self.vector_objective is not None:
            return self.vector_objective(seen, self.failure_reward if failed else None)
        if failed:
            return self.failure_reward
        return float(self.objective(seen))

    # ------------------------------------------------------------------ helpers
    def _zero_reward(self) -> float | np.ndarray:
        if self.vector_objective is None:
            return 0.0
        return np.zeros(len(self.vector_objective.names), dtype=np.float64)

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.space.max_decisions, dtype=np.int64)
        obs[: len(self._prefix)] = np.asarray(self._prefix, dtype=np.int64) + 1
        return obs

    def _step_info(self) -> dict[str, Any]:
        decision = self.space.next_decision(self._prefix)
        return {
            "action_mask": self.space.action_mask(self._prefix),
            "decision": None if decision is None else decision.name,
            "arch_prefix": tuple(self._prefix),
        }

    def close(self) -> None:
        if self.runner.store is not None:
            self.runner.store.close()
        if self._owns_executor and self.executor is not None:
            self.executor.close()
            self.executor = None
        super().close()
