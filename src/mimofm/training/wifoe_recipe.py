"""The wifoe training recipe for the shared loop: multi-task pretraining (Algorithm 1), single-task
training (STL), frozen-trunk fine-tuning (Algorithm 2) and the CEP / DSC baselines.

* Per step, every task of ``tasks`` contributes one mini-batch of ``batch_per_task`` samples with a
  user count drawn from the task's range (3–8) and an SNR drawn from ``snr_grid_db``; the loss is
  ``Σ_n λ_n · (−mean sum rate_n)`` with uniform ``λ_n = 1/N`` (the paper's Algorithm 1), plus
  ``aux_loss_weight ·`` the MoE load-balancing loss. Pilots, encoders, trunk and heads train end to end;
  the pilot noise of the forward pass is part of the batch (deterministic in step).
* ``init_from`` (a wifoe checkpoint stem): the trunk's weights are copied from it; tasks that the
  checkpoint has keep its branch only when ``keep_branches`` is true. ``freeze_trunk``: only branch
  parameters train (Algorithm 2; with ``init_from: ""`` it is the paper's "random init + fine-tune").
* ``sample_budget > 0``: the training data is a fixed pool of that many multi-user samples per task
  (:class:`~mimofm.channels.tasks.SamplePool`), the fine-tuning budget of Fig. 4. ``val_fraction``
  of the budget is then held out, on positions of its own (:func:`~mimofm.channels.tasks.split_pool`),
  and :meth:`WiFoERecipe.evaluate` adds ``val_rate@<eval_snr_db>dB`` on it — the metric for the loop's
  ``keep_best``.
* **Operating point** (:class:`~mimofm.core.linkbudget.FDDOperatingPoint`): ``snr_grid_db`` is read in
  ``snr_convention`` (``received``: ``E‖h‖² = SNR``; ``per-antenna``: ``E‖h‖² = N_t·SNR``). The pilots'
  energy follows from ``pilot_snr_db`` (one fixed pilot SNR) or ``pilot_snr_offset_db`` (pilot SNR = data
  SNR + offset, so the received pilot power still tells the users the data SNR); neither: full-energy
  pilots, ``E_s = 1``, the historical point. :meth:`WiFoERecipe.operating_point` gives the point of a
  data SNR.
* ``loss_norm: per-sample`` divides each sample's sum rate by ``Σ_k log2(1 + ‖h_k‖²/K)`` (its users alone,
  equal power, no interference), so that high-SNR samples do not dominate the mean; ``none`` (default)
  averages raw rates, as the paper does.
* CEP (``model.feedback: estimate``): for the first ``cep_estimation_steps`` steps the loss is the
  estimation NMSE of the user side; afterwards the user side is frozen (its estimate detached) and the
  BS trains on the sum rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.channels.tasks import DEFAULT_POSITIONS, SamplePool, draw_task_samples, load_task, split_pool
from mimofm.channels.types import TaskData
from mimofm.core.linkbudget import FDD_CONVENTIONS, FDDOperatingPoint
from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.models.wifoe import TaskShape, WiFoE, WiFoEConfig

__all__ = ["PRETRAIN_TASKS", "WiFoERecipe"]

PRETRAIN_TASKS = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"]


@dataclass
class WiFoERecipe:
    """Hyper-parameters of wifoe training (saved with the checkpoint)."""

    tasks: list[str] = field(default_factory=lambda: list(PRETRAIN_TASKS))
    model: dict = field(default_factory=dict)  # WiFoEConfig overrides (not `tasks`)
    snr_grid_db: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0])
    batch_per_task: int = 64
    aux_loss_weight: float = 0.01
    positions: int = DEFAULT_POSITIONS
    data_seed: int = 0
    sample_budget: int = 0
    val_fraction: float = 0.0  # with sample_budget: the share of the budget held out for validation
    init_from: str = ""
    keep_branches: bool = False
    freeze_trunk: bool = False
    trunk_norms_trainable: bool = False  # with freeze_trunk: the trunk's LayerNorm affine stays trainable
    cep_estimation_steps: int = 0
    snr_convention: str = "received"  # how snr_grid_db is read: received | per-antenna
    pilot_snr_db: float | None = None  # a fixed pilot SNR (dB) for every data SNR
    pilot_snr_offset_db: float | None = None  # pilot SNR = data SNR + this (dB)
    loss_norm: str = "none"  # none | per-sample
    eval_snr_db: float = 10.0  # the data SNR of the loop's evaluation (rate@<snr>dB, val_rate@<snr>dB)
    seed: int = 0
    name: str = "wifoe"

    def __post_init__(self) -> None:
        if not self.tasks or not all(isinstance(t, str) for t in self.tasks):
            raise MimofmInputError("`tasks` must be a non-empty list of catalog task names (T1..T12, G1..G3)")
        if "tasks" in self.model:
            raise MimofmInputError("`model.tasks` is set from the recipe's `tasks`; remove it")
        if self.batch_per_task < 1 or self.sample_budget < 0 or not self.snr_grid_db:
            raise MimofmInputError("need batch_per_task >= 1, sample_budget >= 0 and a non-empty snr_grid_db")
        if self.snr_convention not in FDD_CONVENTIONS:
            raise MimofmInputError(
                f"`snr_convention` must be one of {', '.join(FDD_CONVENTIONS)}, got {self.snr_convention!r}"
            )
        for name in ("pilot_snr_db", "pilot_snr_offset_db", "eval_snr_db"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise MimofmInputError(f"`{name}` must be a finite number of dB, got {v!r}")
        if self.pilot_snr_db is not None and self.pilot_snr_offset_db is not None:
            raise MimofmInputError(
                "give at most one of `pilot_snr_db` (fixed) and `pilot_snr_offset_db` (tied)"
            )
        if self.loss_norm not in ("none", "per-sample"):
            raise MimofmInputError(f"`loss_norm` must be 'none' or 'per-sample', got {self.loss_norm!r}")
        if self.val_fraction and not (self.sample_budget and 0 < self.val_fraction < 1):
            raise MimofmInputError(
                "`val_fraction` must be in (0, 1) and needs a `sample_budget` to hold out from"
            )
        from mimofm.channels.tr38901 import get_task

        self._cfgs = [get_task(t) for t in self.tasks]
        self._data: list[TaskData] | None = None
        self._pools: list[SamplePool] | None = None
        self._val: list[SamplePool | None] | None = None  # per task, with val_fraction

    def config(self) -> dict:
        """The recipe's fields as a dict (saved with the checkpoint)."""
        return asdict(self)

    def data(self) -> list[TaskData]:
        """Per task of ``tasks``, its normalized positions (loaded once, then kept)."""
        if self._data is None:
            self._data = [load_task(t, self.positions, self.data_seed) for t in self.tasks]
        return self._data

    def pools(self) -> list[SamplePool] | None:
        """Per task, the training pool of the sample budget (None: fresh draws every step)."""
        if self.sample_budget and self._pools is None:
            split = [
                split_pool(d.train, self.sample_budget, c.num_ue_range, self.seed + i, self.val_fraction)
                for i, (d, c) in enumerate(zip(self.data(), self._cfgs))
            ]
            self._pools, self._val = [s[0] for s in split], [s[1] for s in split]
        return self._pools

    def operating_point(self, snr_db: float) -> FDDOperatingPoint:
        """The operating point of data SNR ``snr_db`` under this recipe's convention and pilot rule."""
        pilot = self.pilot_snr_db
        if self.pilot_snr_offset_db is not None:
            pilot = snr_db + self.pilot_snr_offset_db
        return FDDOperatingPoint(snr_db, self.snr_convention, pilot)

    @property
    def val_metric(self) -> str:
        """The name of the mean validation rate (the loop's ``keep_best`` metric)."""
        return f"val_rate@{self.eval_snr_db:g}dB"

    def samples_per_step(self) -> int:
        """Channel samples one step draws (one batch per task)."""
        return self.batch_per_task * len(self.tasks)

    def build_model(self) -> WiFoE:
        """A fresh :class:`WiFoE` with one branch per task, or one whose trunk (and, with ``keep_branches``,
        its matching branches) comes from ``init_from``; trunk frozen with ``freeze_trunk``."""
        self.data()
        shapes = [TaskShape.of(c) for c in self._cfgs]
        if not self.init_from:
            model = WiFoE(WiFoEConfig(**self.model, tasks=shapes))
        else:
            from mimofm.models.zoo import load_wifoe

            pre = load_wifoe(self.init_from)
            if self.model:
                raise MimofmInputError(
                    "`model` overrides cannot be combined with `init_from` (the checkpoint "
                    "fixes the architecture)"
                )
            keep = [s for s in shapes if self.keep_branches and s.name in pre.branches]
            model = WiFoE(WiFoEConfig(**{**pre.cfg.to_dict(), "tasks": keep or shapes[:1]}))
            model.trunk.load_state_dict(pre.trunk.state_dict())
            for s in keep:
                model.branches[s.name].load_state_dict(pre.branches[s.name].state_dict())
            for s in shapes:
                if s.name not in model.branches:
                    model.add_task(s)
        if self.freeze_trunk:
            model.freeze_trunk(keep_norms=self.trunk_norms_trainable)
        return model

    def batch(self, step: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per task: (name, SNR-scaled channel ``[B, K, N_t]``, pilot noise ``[B, K, L]``, pilot energy
        ``[]``), deterministic in step."""
        rng = np.random.default_rng([self.seed, step])
        pools = self.pools()
        conv = self.snr_convention
        out = []
        for i, (c, d) in enumerate(zip(self._cfgs, self.data())):
            snr = self.snr_grid_db[int(rng.integers(len(self.snr_grid_db)))]
            if pools is not None:
                h = pools[i].draw(self.batch_per_task, rng, snr, conv)
            else:
                k = int(rng.integers(c.min_ue, c.max_ue + 1))
                h = draw_task_samples(d.train, self.batch_per_task, k, int(rng.integers(2**62)), snr, conv)
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            re_im = torch.randn((2,) + h.shape[:2] + (c.pilot_length,), generator=g) * 0.5**0.5
            e_s = torch.tensor(self.operating_point(snr).pilot_energy(c.num_bs_ant))
            out.append((c.name, h, torch.complex(re_im[0], re_im[1]), e_s))
        return out

    def _rate_objective(self, h: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, mean sum rate): the objective is the batch mean of the sum rate, each sample divided by
        its interference-free equal-power rate with ``loss_norm: per-sample``."""
        r = sum_rate(h.to(torch.complex128), w.to(torch.complex128))  # [B]
        if self.loss_norm != "per-sample":
            return r.mean(), r.mean()
        g = h.to(torch.complex128).abs().square().sum(-1)  # [B, K]
        return (r / torch.log2(1 + g / h.shape[-2]).sum(-1).clamp_min(1e-9)).mean(), r.mean()

    def loss(self, model: WiFoE, batch, step: int):
        """Mean over tasks of ``−`` the (normalized) sum-rate objective plus ``aux_loss_weight ·`` the MoE
        load-balancing loss; CEP stage 1: the user side's estimation NMSE. Returns ``(loss [], stats)``."""
        stats: dict[str, float] = {}
        losses, aux = [], []
        cep_est = model.cfg.feedback == "estimate" and step < self.cep_estimation_steps
        for name, h, z, e_s in batch:
            y = model.receive(h, name, z, pilot_energy=e_s)
            if cep_est:  # stage 1 of CEP: the user side learns to estimate its channel
                err = (model.estimate(y, name) - h).abs().square().sum(-1) / h.abs().square().sum(-1)
                losses.append(err.mean())
                stats[f"nmse/{name}"] = float(err.mean().detach())
                continue
            q = model.feedback(y, name)
            if model.cfg.feedback == "estimate":
                q = q.detach()  # stage 2 of CEP: the estimator is fixed
            w, routing = model.decode_with_routing(q, name)
            objective, r = self._rate_objective(h, w)
            losses.append(-objective.float())
            aux.append(routing.aux_loss())
            stats[f"rate/{name}"] = float(r.detach())  # the sum rate itself, whatever the objective
        loss = torch.stack(losses).mean()
        if aux and self.aux_loss_weight:
            a = torch.stack(aux).mean()
            loss = loss + self.aux_loss_weight * a
            stats["aux_loss"] = float(a.detach())
        return loss, stats

    @torch.no_grad()
    def evaluate(self, model: WiFoE) -> dict[str, float]:
        """Mean end-to-end sum rate per task at ``eval_snr_db`` (this recipe's convention and pilot rule)
        on a fixed draw of training positions (K cycles 3..8); with ``val_fraction``, also on the held-out
        validation samples (:attr:`val_metric`: mean over tasks)."""
        conv, op, at = self.snr_convention, self.operating_point(self.eval_snr_db), f"{self.eval_snr_db:g}dB"

        def rate(h: torch.Tensor, name: str, k: int) -> float:
            e_s = op.pilot_energy(h.shape[-1])
            w = model(h, name, generator=torch.Generator().manual_seed(k), pilot_energy=e_s)
            return float(sum_rate(h.to(torch.complex128), w.to(torch.complex128)).mean())

        out = {}
        for c, d in zip(self._cfgs, self.data()):
            rates = [
                rate(draw_task_samples(d.train, 16, k, 30_000 + k, self.eval_snr_db, conv), c.name, k)
                for k in range(c.min_ue, c.max_ue + 1)
            ]
            out[f"rate@{at}/{c.name}"] = sum(rates) / len(rates)
        if self.val_fraction:
            self.pools()
            for c, val in zip(self._cfgs, self._val):
                rates = [rate(h, c.name, k) for k, h in val.samples(self.eval_snr_db, conv).items()]
                out[f"val_rate@{at}/{c.name}"] = sum(rates) / len(rates)
            out[self.val_metric] = sum(out[f"val_rate@{at}/{c.name}"] for c in self._cfgs) / len(self._cfgs)
        return out
