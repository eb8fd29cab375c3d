"""The papp training recipe for the shared loop: teacher, student distillation and MLDG.

* **Domains**: every (site, LOS|NLOS) training dataset at every SNR of ``snr_grid_db`` (train-split
  positions only). Each step draws ``domains_per_step`` domains and ``batch_per_domain`` samples of each.
* **Teacher** (self-supervised): ``−R(W̄_T)/R^WMMSE`` per domain, ``R^WMMSE`` the domain's WMMSE mean
  sum rate (:func:`mimofm.channels.site_data.wmmse_reference`).
* **Student** (from ``teacher_warmup_steps`` on): ``L_S = L_MSE(W̄_T, W̄)`` (per-column phase-invariant:
  rates do not depend on a column's phase) while the teacher's rate on
  the domain is below ``gate · R^WMMSE``, else ``L_MSE − λ·R(W̄)/R^WMMSE`` (papers: gate 0.8, λ = 0.1).
  The teacher's precoder is a fixed target for the student (detached).
* **Imperfect CSI** (``csi_error_fraction > 0``): that share of the domains precode from ``H + E`` at an
  NMSE drawn from ``csi_nmse_db_grid`` (:func:`mimofm.channels.sampling.imperfect_csi`), rates on ``H``.
* **MLDG** (``mldg: true``): the step's domains are split into meta-train and meta-generalization
  sets; the loss is ``L_train(θ) + β·L_gen(θ − α∇L_train)`` (first order: the inner gradient is not
  differentiated), so the optimizer's update is ``θ ← θ − ε(δ_train + β·δ_gen)``. ``mldg: false`` is
  the "DeepAll" baseline: the mean loss over all the step's domains, same budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.func import functional_call

from mimofm.channels.sampling import imperfect_csi
from mimofm.channels.site_data import (
    ReferenceRates,
    check_configs,
    draw_config_samples,
    equal_users_batch,
    load_datasets,
)
from mimofm.channels.types import Dataset
from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.models.papp import PaPP, PaPPConfig

__all__ = ["PaPPRecipe", "phase_invariant_mse"]


@dataclass
class PaPPRecipe:
    """Hyper-parameters of papp training (saved with the checkpoint)."""

    sites: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # PaPPConfig overrides
    snr_grid_db: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0, 30.0])
    batch_per_domain: int = 32
    domains_per_step: int = 6
    mldg: bool = True
    meta_gen_domains: int = 2
    meta_lr: float = 1e-2  # α of the virtual step
    meta_beta: float = 1.0
    meta_grad_clip: float = 0.0  # > 0: clip the virtual step's gradient to this norm (0: off, as shipped)
    meta_split: str = "random"  # "random": any domains; "site": meta-generalization domains from one site no
    #                             meta-train domain of the step comes from (leave-one-site-out)
    teacher_warmup_steps: int = 200
    gate: float = 0.8
    student_lambda: float = 0.1
    rmax_samples: int = 128
    csi_error_fraction: float = 0.0  # share of domains whose CSI carries an estimation error
    csi_nmse_db_grid: list[float] = field(default_factory=lambda: [-20.0, -10.0])
    # [[K, N_t], ...]: each domain batch draws one (user-form models; N_t a sub-array of the sites'); empty:
    # the model's num_ue on the full array
    configs: list = field(default_factory=list)
    rmax_iterations: int | None = None  # R^WMMSE truncated at this many iterations (None: converged)
    equal_users: bool = False  # scale domain batches by num_ue/K: every configuration sees as many users
    # a papp checkpoint stem to start from (its architecture must equal ``model``'s): continued pretraining,
    # e.g. on a configuration mix of its own; "" (default): a fresh model
    init_from: str = ""
    seed: int = 0
    name: str = "papp"

    def __post_init__(self) -> None:
        if self.mldg and not 1 <= self.meta_gen_domains < self.domains_per_step:
            raise MimofmInputError("MLDG needs 1 <= meta_gen_domains < domains_per_step")
        if self.meta_split not in ("random", "site"):
            raise MimofmInputError(f"`meta_split` must be 'random' or 'site', got {self.meta_split!r}")
        if not 0.0 <= self.csi_error_fraction <= 1.0 or (
            self.csi_error_fraction > 0 and not self.csi_nmse_db_grid
        ):
            raise MimofmInputError(
                "`csi_error_fraction` must be in [0, 1], with a non-empty `csi_nmse_db_grid`"
            )
        self._data: list[Dataset] | None = None
        self._rmax: ReferenceRates | None = None

    def config(self) -> dict:
        """Every hyper-parameter as a plain dict (saved with the checkpoint)."""
        return asdict(self)

    def _cfg(self) -> PaPPConfig:
        n = self.datasets()[0].h.shape[-1]
        return PaPPConfig(num_bs_ant=n, **self.model)

    def configurations(self) -> list[tuple[int, int]]:
        """The ``(K, N_t)`` pairs training draws from (``configs``, or the model's one)."""
        n_full = self.datasets()[0].h.shape[-1]
        return check_configs(self.configs or [[PaPPConfig(**self.model).num_ue, n_full]], n_full)

    def datasets(self) -> list[Dataset]:
        """The (site, LOS|NLOS) training datasets, loaded once."""
        if self._data is None:
            k = max([PaPPConfig(**self.model).num_ue] + [int(c[0]) for c in self.configs])
            self._data = load_datasets(self.sites, k)
        return self._data

    def rmax(self, config: tuple[int, int] | None = None) -> torch.Tensor:
        """``[datasets, SNR grid]`` WMMSE mean sum rate for ``config`` (default the first), computed once
        per configuration."""
        if self._rmax is None:
            self._rmax = ReferenceRates(
                self.datasets(), self.snr_grid_db, self.rmax_samples, self.rmax_iterations
            )
        return self._rmax(*(config or self.configurations()[0]))

    def samples_per_step(self) -> int:
        """Channel samples one step draws (one batch per sampled domain)."""
        return self.domains_per_step * self.batch_per_domain

    def build_model(self) -> PaPP:
        """A fresh model, or ``init_from``'s weights (and the first configuration's reference rates, so a bad
        site list fails early)."""
        self.rmax()
        model = PaPP(self._cfg())
        if self.init_from:
            from mimofm.models.zoo import load_papp

            start = load_papp(self.init_from)
            if start.cfg != model.cfg:
                raise MimofmInputError(
                    f"`init_from` {self.init_from!r} has another architecture than the recipe's `model`: "
                    f"{start.cfg} vs {model.cfg}"
                )
            model.load_state_dict(start.state_dict())
        return model

    def batch(self, step: int) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """``domains_per_step`` (true channel ``[B, K, N]``, the channel the model sees, WMMSE
        reference rate),
        deterministic in step; a ``csi_error_fraction`` of the domains see ``H + E`` at a grid NMSE."""
        rng = np.random.default_rng([self.seed, step])
        data, configs = self.datasets(), self.configurations()
        out = []
        for e in self._domain_datasets(rng):
            si = int(rng.integers(len(self.snr_grid_db)))
            config = configs[int(rng.integers(len(configs)))] if len(configs) > 1 else configs[0]
            b = self.batch_per_domain
            if self.equal_users:
                b = equal_users_batch(b, PaPPConfig(**self.model).num_ue, config[0])
            h = draw_config_samples(data[e], b, *config, int(rng.integers(2**62)), self.snr_grid_db[si])
            seen = h
            if self.csi_error_fraction and rng.uniform() < self.csi_error_fraction:
                nmse = self.csi_nmse_db_grid[int(rng.integers(len(self.csi_nmse_db_grid)))]
                seen = imperfect_csi(h, nmse, int(rng.integers(2**62)))
            out.append((h, seen, float(self.rmax(config)[e, si])))
        return out

    def _domain_datasets(self, rng: np.random.Generator):
        """The dataset index of each of the step's domains, the meta-generalization ones last (a generator:
        the "random" split draws each index just before its domain, as the shipped checkpoint was trained)."""
        data = self.datasets()
        site = [d.name.rsplit("/", 1)[0] for d in data]
        if self.meta_split == "site" and self.mldg and len(set(site)) > 1:
            held = sorted(set(site))[int(rng.integers(len(set(site))))]
            train = [i for i, s in enumerate(site) if s != held]
            gen = [i for i, s in enumerate(site) if s == held]
            n_gen = self.meta_gen_domains
            picks = [train[j] for j in rng.integers(len(train), size=self.domains_per_step - n_gen)]
            picks += [gen[j] for j in rng.integers(len(gen), size=n_gen)]
            yield from (int(i) for i in picks)
            return
        for _ in range(self.domains_per_step):
            yield int(rng.integers(len(data)))

    def _domain_loss(self, model, params, h: torch.Tensor, seen: torch.Tensor, r_max: float, student: bool):
        """Loss of one domain: the model precodes from ``seen`` (``h`` or an estimate), rates on ``h``."""
        w_s, w_t = functional_call(model, params, (seen,), {"with_teacher": True})
        r_t = sum_rate(h.to(torch.complex128), w_t.to(torch.complex128)).mean()
        loss = -r_t / r_max
        stats = {"teacher_ratio": float(r_t.detach()) / r_max}
        if student:
            r_s = sum_rate(h.to(torch.complex128), w_s.to(torch.complex128)).mean()
            mse = phase_invariant_mse(w_s, w_t.detach()).mean()
            gated = float(r_t.detach()) >= self.gate * r_max
            loss = loss + mse - (self.student_lambda * r_s / r_max if gated else 0.0)
            stats.update(student_ratio=float(r_s.detach()) / r_max, mse=float(mse.detach()))
        return loss, stats

    def loss(self, model: PaPP, batch, step: int):
        """Teacher + gated student loss over the step's domains, plain (DeepAll) or MLDG -> (loss, stats)."""
        student = step >= self.teacher_warmup_steps
        params = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        if not self.mldg:
            parts = [self._domain_loss(model, params, h, seen, r, student) for h, seen, r in batch]
            loss = torch.stack([p[0] for p in parts]).mean()
            return loss, _mean_stats([p[1] for p in parts])
        n_gen = self.meta_gen_domains
        train_parts = [self._domain_loss(model, params, h, seen, r, student) for h, seen, r in batch[:-n_gen]]
        l_train = torch.stack([p[0] for p in train_parts]).mean()
        names = [k for k, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(l_train, [params[k] for k in names], retain_graph=True, allow_unused=True)
        if self.meta_grad_clip > 0:  # a gradient spike must not throw the virtual weights off (NaN in L_gen)
            norm = float(torch.sqrt(sum(g.detach().square().sum() for g in grads if g is not None)))
            scale = min(1.0, self.meta_grad_clip / (norm + 1e-12)) if math.isfinite(norm) else 0.0
            grads = tuple(None if g is None else torch.nan_to_num(g) * scale for g in grads)
        fast = dict(params)
        for k, g in zip(names, grads):
            if g is not None:
                fast[k] = params[k] - self.meta_lr * g.detach()
        gen_parts = [self._domain_loss(model, fast, h, seen, r, student) for h, seen, r in batch[-n_gen:]]
        l_gen = torch.stack([p[0] for p in gen_parts]).mean()
        stats = _mean_stats([p[1] for p in train_parts])
        stats["meta_gen_loss"] = float(l_gen.detach())
        return l_train + self.meta_beta * l_gen, stats

    @torch.no_grad()
    def evaluate(self, model: PaPP) -> dict[str, float]:
        """Student and teacher as ratios to WMMSE on a fixed draw of the training datasets, per grid SNR."""
        out = {}
        data, configs = self.datasets(), self.configurations()
        for si, snr in enumerate(self.snr_grid_db):
            student, teacher = [], []
            for config in configs:
                hs = torch.cat(
                    [draw_config_samples(d, 16, *config, 20_000 + e, snr) for e, d in enumerate(data)]
                )
                ref = float(self.rmax(config)[:, si].mean())
                h64 = hs.to(torch.complex128)
                student.append(float(sum_rate(h64, model(hs).to(torch.complex128)).mean()) / ref)
                teacher.append(
                    float(sum_rate(h64, model.teacher_precoder(hs).to(torch.complex128)).mean()) / ref
                )
            out[f"student_ratio_to_wmmse@{snr:g}dB"] = sum(student) / len(student)
            out[f"teacher_ratio_to_wmmse@{snr:g}dB"] = sum(teacher) / len(teacher)
        return out


def phase_invariant_mse(w: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``Σ_k min_φ ‖w_k e^{jφ} − ref_k‖²`` per sample (``[B, N, K]`` -> ``[B]``): rates do not see a
    column's phase, so the student is not asked to copy it."""
    cross = (w.conj() * ref).sum(-2).abs()  # [B, K]
    return (w.abs().square().sum(-2) + ref.abs().square().sum(-2) - 2 * cross).sum(-1)


def _mean_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    keys = stats[0].keys()
    return {k: sum(s.get(k, 0.0) for s in stats) / len(stats) for k in keys}
