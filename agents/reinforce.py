"""The recurrent controller of Zoph & Le (2017), "Neural Architecture Search with Reinforcement
Learning" (ICLR), trained with REINFORCE.

An LSTM emits one decision per step. Its input is the embedding of the decision it took last
(a learned start token at the first step); one linear softmax head per decision *kind* (the
kinds of :attr:`SearchSpace.kinds <nas_gym.spaces.SearchSpace.kinds>`, e.g. all kernel sizes
share one head) turns its output into logits, masked to the choices valid at that step.

Sampling runs the LSTM one step at a time without autograd, carrying the hidden state through the
episode. The update recomputes the log-probabilities of a whole batch of episodes in one padded LSTM
pass, so the pending batch is plain data (actions, kinds, masks, rewards): :meth:`ReinforceAgent.state_dict`
is a complete checkpoint at any episode boundary. On a vector env (a batch search, see
:class:`~agents.Agent`) the controller samples ``m`` architectures at once and the copies evaluate
them together: with ``num_envs = episodes_per_update`` one batch of the env is one policy-gradient
update, Zoph & Le's ``m`` architectures per update.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from torch import nn

from agents.base import Agent
from agents.results import EpisodeRecord
from agents.tools import as_int_list, check_config_matches, space_of
from agents.warm_start import WarmStartable
from nas_gym.core.checks import check_int, check_number
from nas_gym.core.devices import torch_threads
from nas_gym.spaces import Arch, SearchSpace

_MASKED_LOGIT = -1e9
"""Logit of a masked choice: its probability is exactly 0 in float32, and unlike ``-inf`` it
keeps ``p * log p`` and its gradient finite."""

# The controller's tensors are tiny: splitting its ops over threads only adds synchronisation
# (several times slower updates on two cores), so it runs on one; the env's training keeps its own.
CONTROLLER_THREADS = 1


@dataclass(frozen=True)
class ReinforceConfig:
    """Hyperparameters of :class:`ReinforceAgent`.

    The controller's size follows Zoph & Le (2 layers of 35 units). The optimisation defaults are
    tuned for searches of a few hundred architectures (the scale of a nas-gym run), not the 12,800
    of the paper: a higher learning rate, a stronger entropy bonus and small batches, so that the
    controller visibly concentrates within 300 episodes on a space the size of NAS-Bench-201
    (``tests/agents/test_learning.py`` checks it on a synthetic landscape).
    """

    hidden_size: int = 35
    """Units per LSTM layer (Zoph & Le: 35)."""
    num_layers: int = 2
    """LSTM layers (Zoph & Le: 2)."""
    embedding_size: int = 35
    """Size of the embedding of the previous decision, the LSTM's input."""
    learning_rate: float = 0.01
    """Adam's step size. ENAS uses 3.5e-4 over thousands of updates; with a few hundred episodes
    that leaves the policy nearly uniform, while 0.03 often collapses it onto a mediocre
    architecture within the first hundred."""
    episodes_per_update: int = 2
    """Episodes (architectures) per policy-gradient update: ``m`` in Zoph & Le. Few
    mean more updates per episode, which is what a few hundred episodes need."""
    baseline_decay: float = 0.95
    """Decay of the exponential moving average of returns used as baseline (the advantage of an
    episode is its return minus the average of the returns before it)."""
    entropy_weight: float = 0.01
    """Weight of the entropy bonus (the policy's entropy summed over the episode's decisions),
    which slows the collapse onto one architecture (ENAS: 1e-4, for far longer runs)."""
    max_grad_norm: float = 5.0
    """Gradients are clipped to this global norm before each step."""
    init_range: float = 0.1
    """The softmax heads start uniform in ``[-init_range, init_range]`` (as all parameters do in
    ENAS), which makes the initial policy close to uniform. The embedding and the LSTM start
    with PyTorch's default initialisation (see :meth:`Controller.initialise`)."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "embedding_size", "episodes_per_update"):
            check_int(getattr(self, name), name, minimum=1)
        for name in ("learning_rate", "max_grad_norm", "init_range"):
            check_number(getattr(self, name), name, minimum=0, strict=True)
        check_number(self.entropy_weight, "entropy_weight", minimum=0)
        check_number(self.baseline_decay, "baseline_decay", minimum=0, maximum=0.999999)


class Controller(nn.Module):
    """The LSTM policy over a space's decisions.

    Args:
        num_kinds: the number of decision kinds (one softmax head each).
        num_actions: ``n`` of the env's ``Discrete(n)``; every head has ``n`` logits, masked to
            the current decision's choices, so decisions of one kind may differ in size.
        config: sizes of the embedding and the LSTM.
    """

    def __init__(self, num_kinds: int, num_actions: int, config: ReinforceConfig):
        super().__init__()
        self.num_kinds = num_kinds
        self.num_actions = num_actions
        self.start_token = num_kinds * num_actions
        """Token ids: ``kind * num_actions + choice`` for a decision taken, then the start token."""
        self.embedding = nn.Embedding(self.start_token + 1, config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, config.num_layers, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(config.hidden_size, num_actions) for _ in range(num_kinds))

    def initialise(self, head_range: float, generator: torch.Generator) -> None:
        """PyTorch's default initialisation drawn from ``generator``, heads uniform in
        ``[-head_range, head_range]``.

        Unit-variance embeddings and the LSTM's ``U(-1/sqrt(hidden), 1/sqrt(hidden))`` make the
        hidden state differ clearly from one step to the next, so a head shared by many
        positions can tell them apart from the first updates; small heads keep the initial
        policy close to uniform.
        """
        bound = 1.0 / math.sqrt(self.lstm.hidden_size)
        with torch.no_grad():
            self.embedding.weight.normal_(0.0, 1.0, generator=generator)
            for parameter in self.lstm.parameters():
                parameter.uniform_(-bound, bound, generator=generator)
            for parameter in self.heads.parameters():
                parameter.uniform_(-head_range, head_range, generator=generator)

    def token(self, kind: int, choice: int) -> int:
        """The input token that encodes decision ``(kind, choice)`` for the next step."""
        return kind * self.num_actions + choice

    def step(
        self, token: int, kind: int, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One decision: ``(logits of the head of kind, new LSTM state)`` after input ``token``."""
        x = self.embedding.weight[token].view(1, 1, -1)
        out, state = self.lstm(x, state)
        return self.heads[kind](out.view(-1)), state

    def log_probs(
        self,
        tokens: torch.Tensor,
        kinds: torch.Tensor,
        actions: torch.Tensor,
        masks: torch.Tensor,
        valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy of whole episodes, summed over their decisions.

        All arguments are padded to ``(batch, steps)``: ``tokens`` the inputs, ``kinds`` the
        head of each step, ``actions`` the choices taken, ``masks`` ``(batch, steps, n)`` the
        valid choices, ``valid`` which steps exist. Returns two ``(batch,)`` tensors.
        """
        out, _ = self.lstm(self.embedding(tokens))
        every_head = torch.stack([head(out) for head in self.heads], dim=2)  # (B, T, kinds, n)
        index = kinds[:, :, None, None].expand(-1, -1, 1, self.num_actions)
        logits = every_head.gather(2, index).squeeze(2).masked_fill(~masks, _MASKED_LOGIT)
        log_p = torch.log_softmax(logits, dim=-1)
        taken = log_p.gather(-1, actions[..., None]).squeeze(-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        weight = valid.to(log_p.dtype)
        return (taken * weight).sum(1), (entropy * weight).sum(1)


class ReinforceAgent(WarmStartable, Agent):
    """Zoph & Le's NAS controller: an LSTM policy trained with REINFORCE.

    Every ``episodes_per_update`` finished episodes the controller takes one Adam step on

    ``loss = -mean_i[(R_i - b_i) * log p(arch_i)] - entropy_weight * mean_i[H_i]``

    where ``R_i`` is the episode return, ``b_i`` the exponential moving average of the returns
    before episode ``i`` (the first episode is its own baseline) and ``H_i`` the policy's
    entropy summed over the episode's decisions. The controller runs on the CPU.

    Batches (a vector env): :meth:`propose` samples ``n`` architectures from the controller,
    one after another with the same draws as :meth:`act` (the valid choices of a step are
    ``space.action_mask(prefix)``, what the env reports in ``info["action_mask"]``), and
    :meth:`tell` learns from each result exactly as :meth:`observe` does at an episode's end.
    With ``n = episodes_per_update`` (:attr:`num_envs`) each batch of the env is one update on
    architectures sampled from one policy; with ``n`` a multiple of it, the later updates of a batch
    use architectures sampled before the earlier ones.

    Args:
        seed: seeds the initial weights (a ``torch.Generator``) and the sampling of actions
            (the agent's numpy generator).
        config: a :class:`ReinforceConfig`; keyword arguments override its fields, e.g.
            ``ReinforceAgent(seed=0, learning_rate=3.5e-4)``.
        warm_start: ``None`` (default) or a :class:`~agents.warm_start.WarmStart`: screen random
            architectures by a zero-cost fidelity, evaluate the best first and learn from them.
    """

    name: ClassVar[str] = "reinforce"
    supports_batches: ClassVar[bool] = True

    def __init__(self, seed: int | None = None, config: ReinforceConfig | None = None, **overrides: Any):
        super().__init__(seed)
        self.init_warm_start(overrides.pop("warm_start", None))
        config = ReinforceConfig() if config is None else config
        if not isinstance(config, ReinforceConfig):
            raise TypeError(f"expected config as a ReinforceConfig, got {type(config).__name__}")
        fields = [f.name for f in dataclasses.fields(ReinforceConfig)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise TypeError(
                f"expected keyword arguments among the ReinforceConfig fields {fields}, got {unknown}"
            )
        self.config = dataclasses.replace(config, **overrides)
        self.space: SearchSpace | None = None
        self.controller: Controller | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.kinds: tuple[str, ...] = ()
        """Names of the decision kinds, in head order."""
        self.baseline: float | None = None
        """The moving average of episode returns (``None`` before the first episode)."""
        self.batch: list[dict[str, Any]] = []
        """Finished episodes since the last update: ``actions``, ``kinds``, ``masks``,
        ``reward``, ``advantage``."""
        self.updates = 0
        """Policy-gradient steps taken."""
        self._last_update: dict[str, float] = {}
        self._kind_index: dict[str, int] = {}
        self._reset_episode()

    # ------------------------------------------------------------------ set-up
    def _build(self, kinds: Sequence[str], num_actions: int, initialise: bool = True) -> None:
        self.kinds = tuple(kinds)
        self._kind_index = {kind: i for i, kind in enumerate(self.kinds)}
        self.controller = Controller(len(self.kinds), num_actions, self.config)
        if initialise:
            generator = torch.Generator()
            # Without a seed the weights still come from the agent's generator, not torch's global one.
            generator.manual_seed(self.seed if self.seed is not None else int(self.rng.integers(2**63)))
            self.controller.initialise(self.config.init_range, generator)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.config.learning_rate)

    @property
    def num_envs(self) -> int:
        """Episodes per update (``config.episodes_per_update``): one update per batch of copies."""
        return self.config.episodes_per_update

    def prepare(self, env: gym.Env | VectorEnv) -> None:
        space = space_of(env, vector=True)
        kinds = tuple(decision.kind for decision in space.kinds)
        if self.controller is None:
            self._build(kinds, space.num_actions)
        elif kinds != self.kinds or space.num_actions != self.controller.num_actions:
            raise ValueError(
                f"expected a space with decision kinds {self.kinds} and {self.controller.num_actions} "
                f"actions (the controller's), got kinds {kinds} and {space.num_actions} actions"
            )
        self.space = space
        self.queue_screening()

    def _reset_episode(self) -> None:
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None
        self._actions: list[int] = []
        self._kinds: list[int] = []
        self._masks: list[list[bool]] = []
        self._return = 0.0

    # ------------------------------------------------------------------ agent protocol
    def on_episode_start(self, obs: Any, info: dict[str, Any]) -> None:
        self._reset_episode()

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        action, kind, mask, self._state = self._sample_decision(
            self._actions, self._kinds, self._state, info.get("action_mask")
        )
        self._actions.append(action)
        self._kinds.append(kind)
        self._masks.append(mask)
        return action

    def observe(
        self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]
    ) -> None:
        self._return += float(reward)
        if not (terminated or truncated):
            return
        if "arch" in info and self._actions:
            self._learn(self._actions, self._kinds, self._masks, self._return)
        self._reset_episode()

    def propose(self, n: int) -> list[Arch]:
        """``n`` architectures sampled from the controller, one after another."""
        space = self._require_space("propose")
        archs: list[Arch] = []
        for _ in range(n):
            actions: list[int] = []
            kinds: list[int] = []
            state = None
            while space.next_decision(actions) is not None:
                action, kind, _, state = self._sample_decision(
                    actions, kinds, state, space.action_mask(actions)
                )
                actions.append(action)
                kinds.append(kind)
            archs.append(tuple(actions))
        return archs

    def tell(self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]) -> None:
        """Learn from each result as :meth:`observe` does at an episode's end (the reward is the
        record's, the episode return)."""
        space = self._require_space("tell")
        if len(archs) != len(records):
            raise ValueError(f"expected one record per architecture ({len(archs)}), got {len(records)}")
        archs, records = self.screened(archs, records)
        for arch, record in zip(archs, records):
            actions = list(space.validate(arch))
            kinds = [self._kind_index[d.kind] for d in space.decisions(actions)]
            masks = [
                self._valid_choices(actions[:i], space.action_mask(actions[:i])) for i in range(len(actions))
            ]
            self._learn(actions, kinds, masks, float(record["reward"]))

    # ------------------------------------------------------------------ sampling
    def _require_space(self, method: str) -> SearchSpace:
        if self.controller is None or self.space is None:
            raise RuntimeError(
                f"expected search(env) before {method}(): the controller is built from the env's space"
            )
        return self.space

    def _valid_choices(self, prefix: Sequence[int], action_mask: Any) -> list[bool]:
        """The choices the controller may take after ``prefix``: those of the decision, and of
        those the ones ``action_mask`` (the env's) allows, when given."""
        assert self.controller is not None and self.space is not None  # _require_space ran
        decision = self.space.next_decision(prefix)
        if decision is None:
            raise RuntimeError(
                f"expected an unfinished episode, got the complete architecture {list(prefix)}"
            )
        mask = np.arange(self.controller.num_actions) < decision.num_choices
        if action_mask is not None:
            mask &= np.asarray(action_mask, dtype=bool)
        return mask.tolist()

    def _sample_decision(
        self,
        actions: Sequence[int],
        kinds: Sequence[int],
        state: tuple[torch.Tensor, torch.Tensor] | None,
        action_mask: Any,
    ) -> tuple[int, int, list[bool], tuple[torch.Tensor, torch.Tensor]]:
        """Sample the decision after ``actions`` (whose head indices are ``kinds``), with the
        LSTM state after them: ``(action, kind, valid choices, new state)``."""
        space = self._require_space("act")
        assert self.controller is not None  # _require_space checked it
        mask = self._valid_choices(actions, action_mask)
        decision = space.next_decision(actions)
        assert decision is not None  # _valid_choices checked it
        kind = self._kind_index[decision.kind]
        token = self.controller.start_token if not actions else self.controller.token(kinds[-1], actions[-1])
        with torch.no_grad(), torch_threads(CONTROLLER_THREADS):
            logits, state = self.controller.step(token, kind, state)
        values = logits.numpy().astype(np.float64)
        values[~np.asarray(mask)] = -np.inf
        probs = np.exp(values - values.max())
        action = int(self.rng.choice(probs.size, p=probs / probs.sum()))
        return action, kind, mask, state

    # ------------------------------------------------------------------ learning
    def _learn(
        self,
        actions: Sequence[int],
        kinds: Sequence[int],
        masks: Sequence[Sequence[bool]],
        episode_return: float,
    ) -> None:
        """Add a finished episode to the batch (its advantage against the moving-average
        baseline, which it then updates); update when the batch is full."""
        baseline = episode_return if self.baseline is None else self.baseline
        self.batch.append(
            {
                "actions": list(actions),
                "kinds": list(kinds),
                "masks": [list(m) for m in masks],
                "reward": episode_return,
                "advantage": episode_return - baseline,
            }
        )
        decay = self.config.baseline_decay
        self.baseline = decay * baseline + (1 - decay) * episode_return
        if len(self.batch) >= self.config.episodes_per_update:
            self.update()

    def update(self) -> dict[str, float]:
        """One policy-gradient step on the pending batch, which it then clears; returns the
        loss, the mean log-probability and the mean entropy of the batch."""
        if self.controller is None or self.optimizer is None:
            raise RuntimeError("expected search(env) before update(): no controller yet")
        if not self.batch:
            raise RuntimeError("expected at least one finished episode in the batch, got none")
        n = self.controller.num_actions
        size, steps = len(self.batch), max(len(e["actions"]) for e in self.batch)
        tokens = torch.full((size, steps), self.controller.start_token, dtype=torch.long)
        kinds, actions = torch.zeros((2, size, steps), dtype=torch.long)
        masks = torch.ones((size, steps, n), dtype=torch.bool)
        valid = torch.zeros((size, steps), dtype=torch.bool)
        for b, episode in enumerate(self.batch):
            length = len(episode["actions"])
            kinds[b, :length] = torch.tensor(episode["kinds"])
            actions[b, :length] = torch.tensor(episode["actions"])
            masks[b, :length] = torch.tensor(episode["masks"], dtype=torch.bool)
            valid[b, :length] = True
            tokens[b, 1:length] = kinds[b, : length - 1] * n + actions[b, : length - 1]
        advantages = torch.tensor([e["advantage"] for e in self.batch], dtype=torch.float32)

        with torch_threads(CONTROLLER_THREADS):
            log_p, entropy = self.controller.log_probs(tokens, kinds, actions, masks, valid)
            loss = -(advantages * log_p).mean() - self.config.entropy_weight * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.controller.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
        self.batch = []
        self.updates += 1
        figures = {"loss": loss, "log_prob": log_p.mean(), "entropy": entropy.mean()}
        self._last_update = {name: float(value.detach()) for name, value in figures.items()}
        return dict(self._last_update)

    def learning_metrics(self) -> dict[str, float]:
        """The last update's loss, mean log-probability and entropy, and the baseline."""
        baseline = {} if self.baseline is None else {"baseline": float(self.baseline)}
        return {**self._last_update, **baseline}

    def probabilities(self, prefix: Sequence[int] = ()) -> np.ndarray:
        """The controller's distribution over the choices of the decision after ``prefix``
        (length ``n``, zero for invalid choices): a view of what it has learned."""
        if self.controller is None or self.space is None:
            raise RuntimeError("expected search(env) before probabilities(): no controller yet")
        state, token = None, self.controller.start_token
        prefix = [int(c) for c in prefix]
        with torch.no_grad():
            for i in range(len(prefix) + 1):
                decision = self.space.next_decision(prefix[:i])
                if decision is None:
                    raise ValueError(f"expected an unfinished prefix, got the complete architecture {prefix}")
                kind = self._kind_index[decision.kind]
                logits, state = self.controller.step(token, kind, state)
                if i < len(prefix):
                    token = self.controller.token(kind, prefix[i])
        values = logits.numpy().astype(np.float64)
        values[decision.num_choices :] = -np.inf
        probs = np.exp(values - values.max())
        return probs / probs.sum()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = {
            **super().state_dict(),
            "config": dataclasses.asdict(self.config),
            "baseline": self.baseline,
            "batch": [
                {
                    "actions": as_int_list(e["actions"]),
                    "kinds": as_int_list(e["kinds"]),
                    "masks": [[bool(v) for v in m] for m in e["masks"]],
                    "reward": float(e["reward"]),
                    "advantage": float(e["advantage"]),
                }
                for e in self.batch
            ],
            "updates": self.updates,
            "kinds": list(self.kinds),
            **self.warm_start_state(),
        }
        if self.controller is not None and self.optimizer is not None:
            state["num_actions"] = self.controller.num_actions
            # Copies: torch's state dicts share memory with the live controller and optimizer.
            state["controller"] = copy.deepcopy(self.controller.state_dict())
            state["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping):
            check_config_matches(state, dataclasses.asdict(self.config), self.display_name)
        super().load_state_dict(state)
        self.load_warm_start(state)
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.batch = [dict(e) for e in state["batch"]]
        self.updates = int(state["updates"])
        if "controller" in state:
            # The loaded weights replace the initial ones; skipping the initialisation also
            # leaves the restored generator untouched.
            self._build(state["kinds"], int(state["num_actions"]), initialise=False)
            assert self.controller is not None and self.optimizer is not None  # _build made them
            self.controller.load_state_dict(state["controller"])
            # A copy: the optimizer would otherwise update the caller's tensors in place.
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self._reset_episode()

    def __repr__(self) -> str:
        return f"ReinforceAgent(seed={self.seed}, config={self.config})"
