"""The fm training recipe (fm paper, Algorithm 1) for the shared loop.

* **Datasets**: every training site split into its LOS and NLOS users (``k = 2 × sites``), training
  positions only (the site's ``split == 0``); one output head per dataset plus a default head.
* **SNR**: each dataset batch is drawn at a site-median SNR from ``snr_grid_db`` (the paper trains
  at one SNR; fm here serves a range).
* **Phase 1, site-aware weighted sum-rate maximization** (steps ``< pretrain_steps``): per dataset
  ``e``, ``α_e = clamp((R_e − R_e^max)², 1, T)``, normalized; ``R_e^max`` is WMMSE's mean sum rate on
  dataset ``e`` at that SNR, ``R_e`` the model's sum rate on the current batch (before the update, i.e.
  after the previous iteration). Loss ``−Σ_e α_e R_e / R_e^max``.
* **Phase 2, multi-objective** (later steps): random requests ``R*_u ~ U(0,1)`` scaled to sum to
  ``β·R_e^max``, ``β ~ U(0,1)``; loss ``μ·L_AR + (1−μ)·L_EC`` with ``L_AR`` the mean squared per-user
  rate error and ``L_EC = E(Ω, γ)/E_max`` (eq. 4, normalized by all antennas on at full power); a
  quarter of every batch keeps "very large requests" with the phase-1 loss so the maximum-rate mode
  is not forgotten.
* **Default head**: trained on batches mixing every dataset, on detached features (it does not shape
  the shared extractor), as the paper's "default output head trained offline on the entire training
  dataset".

``P_RF`` default: 1 W per active RF chain, the circuit power per BS antenna used by Björnson,
Sanguinetti, Hoydis & Debbah, "Optimal design of energy-efficient multi-user MIMO systems: is massive
MIMO the answer?", IEEE Trans. Wireless Commun. 14(6), 2015.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.channels.site_data import (
    ReferenceRates,
    check_configs,
    draw_config_samples,
    draw_samples,
    equal_users_batch,
    load_datasets,
)
from mimofm.channels.types import Dataset
from mimofm.core.energy import energy
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMConfig, FMPrecoder
from mimofm.precoders.structured import transmit as _transmit

__all__ = ["Dataset", "FMRecipe", "draw_samples", "load_datasets"]  # the last three from site_data


@dataclass
class FMRecipe:
    """Hyper-parameters of fm training (everything here is saved with the checkpoint)."""

    sites: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # FMConfig overrides
    snr_grid_db: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0, 30.0])
    batch_per_dataset: int = 32
    default_batch: int = 64
    pretrain_steps: int = 1000
    clamp_t: float = 25.0
    mu: float = 0.98
    p_tx_w: float = 20.0
    p_rf_w: float = 1.0
    rmax_samples: int = 128
    mixes: list[str] = field(default_factory=lambda: ["los", "nlos"])  # which user groups make datasets
    # [[K, N_t], ...]: each step draws one (user-form models; N_t a sub-array of the sites'); empty: the
    # model's num_ue on the full array
    configs: list = field(default_factory=list)
    rmax_iterations: int | None = None  # R^max from WMMSE truncated at this many iterations (None: converged)
    equal_users: bool = False  # scale batches by num_ue/K: every configuration's step sees as many users
    seed: int = 0
    name: str = "fm"

    def __post_init__(self) -> None:
        if not self.mixes or set(self.mixes) - {"los", "nlos"}:
            raise MimofmInputError(f"`mixes` must be a non-empty subset of ['los', 'nlos'], got {self.mixes}")
        self._data: list[Dataset] | None = None
        self._rmax: ReferenceRates | None = None

    def config(self) -> dict:
        """Every hyper-parameter as a plain dict (saved with the checkpoint)."""
        return asdict(self)

    def configurations(self) -> list[tuple[int, int]]:
        """The ``(K, N_t)`` pairs training draws from (``configs``, or the model's one)."""
        n_full = self.datasets()[0].h.shape[-1]
        return check_configs(self.configs or [[FMConfig(**self.model).num_ue, n_full]], n_full)

    def model_config(self) -> FMConfig:
        """The model's :class:`FMConfig`: the recipe's overrides, the sites' array size, one head per
        dataset plus the default head."""
        data = self.datasets()
        n = data[0].h.shape[-1]
        cfg = FMConfig(
            num_bs_ant=n,
            **{
                "p_tx_w": self.p_tx_w,
                "p_rf_w": self.p_rf_w,
                **{k: v for k, v in self.model.items() if k != "num_output_heads"},
            },
        )
        cfg.num_output_heads = len(data) + 1
        return cfg

    # -- data -------------------------------------------------------------------------------------
    def datasets(self) -> list[Dataset]:
        """The (site, LOS|NLOS) training datasets, loaded once."""
        if self._data is None:
            k = max([FMConfig(**self.model).num_ue] + [int(c[0]) for c in self.configs])
            self._data = load_datasets(self.sites, k, mixes=tuple(self.mixes))
        return self._data

    def _draw(self, d: Dataset, n: int, seed: int, snr_db: float, config: tuple[int, int]) -> torch.Tensor:
        return draw_config_samples(d, n, *config, seed, snr_db)

    def _size(self, batch: int, k: int) -> int:
        """A batch of ``batch`` samples at the model's ``num_ue``, for ``k`` users (``equal_users``)."""
        return equal_users_batch(batch, FMConfig(**self.model).num_ue, k) if self.equal_users else batch

    def rmax(self, config: tuple[int, int] | None = None) -> torch.Tensor:
        """``[datasets, SNR grid]`` WMMSE mean sum rate (the paper's ``R_e^max``) for ``config`` (default the
        first), computed once per configuration."""
        if self._rmax is None:
            self._rmax = ReferenceRates(
                self.datasets(), self.snr_grid_db, self.rmax_samples, self.rmax_iterations
            )
        return self._rmax(*(config or self.configurations()[0]))

    def samples_per_step(self) -> int:
        """Channel samples one step draws: a batch per dataset plus the default head's batch (at the model's
        ``num_ue``; ``equal_users`` scales a step at K users by num_ue/K)."""
        return self.batch_per_dataset * len(self.datasets()) + self.default_batch

    def build_model(self) -> FMPrecoder:
        """A fresh model (and the first configuration's reference rates, so a bad site list fails early)."""
        self.rmax()
        return FMPrecoder(self.model_config())

    def requests(self, rng: np.random.Generator, n: int, k: int, r_max: float) -> torch.Tensor:
        """Phase-2 requests ``[n, k]``: ``R*_u ~ U(0,1)`` scaled to sum to ``β·R^max``, ``β ~ U(0,1)``;
        the first quarter keeps "very large requests" (``1e3``) so the maximum-rate mode is not forgotten."""
        r = rng.uniform(size=(n, k))
        beta = rng.uniform(size=(n, 1))
        req = r / r.sum(1, keepdims=True) * beta * r_max
        req[: n // 4] = 1e3
        return torch.from_numpy(req).float()

    def batch(self, step: int) -> dict:
        """Per dataset: channels ``[B, K, N]`` at a grid SNR, its index and phase-2 requests; the same for
        the default head's batch, which mixes every dataset at one grid SNR."""
        rng = np.random.default_rng([self.seed, step])
        data = self.datasets()
        configs = self.configurations()
        config = configs[int(rng.integers(len(configs)))] if len(configs) > 1 else configs[0]
        k, rmax = config[0], self.rmax(config)
        b = self._size(self.batch_per_dataset, k)
        out = {"h": [], "snr_index": [], "requests": [], "config": config}
        for e, d in enumerate(data):
            si = int(rng.integers(len(self.snr_grid_db)))
            out["h"].append(self._draw(d, b, int(rng.integers(2**62)), self.snr_grid_db[si], config))
            out["snr_index"].append(si)
            out["requests"].append(self.requests(rng, b, k, float(rmax[e, si])))
        b_default = self._size(self.default_batch, k)
        mix = [int(x) for x in rng.integers(len(data), size=b_default)]
        si = int(rng.integers(len(self.snr_grid_db)))
        out["default_snr_index"] = si
        out["default_h"] = torch.cat(
            [self._draw(data[e], 1, int(rng.integers(2**62)), self.snr_grid_db[si], config) for e in mix]
        )
        out["default_requests"] = self.requests(rng, b_default, k, float(rmax[:, si].mean()))
        return out

    # -- loss ----------------------------------------------------------------------------------
    def _site_weights(self, rates: torch.Tensor, rmax: torch.Tensor) -> torch.Tensor:
        a = ((rates.detach() - rmax) ** 2).clamp(1.0, self.clamp_t)
        return a / a.sum()

    def head_objective(
        self, head, feats: torch.Tensor, h: torch.Tensor, req: torch.Tensor | None, r_max: float
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """One head's loss on one batch -> (objective, mean max-rate sum rate, phase-2 metrics).

        Phase 1 (``req is None``): ``−R/R^max``. Phase 2: ``−R/R^max`` on the "very large requests"
        rows, and ``μ·L_AR + (1−μ)·L_EC`` on the others, with ``L_AR`` the mean squared per-user rate
        error in units of WMMSE's mean per-user rate and the energy (eq. 4) in units of all antennas on
        at full power — both SNR-independent, so every SNR of the grid weighs the same.
        """
        if req is None:
            ur = user_rates(h, _transmit(*head(feats, h, full_power=True)).to(h.dtype))
            rate = ur.sum(-1).mean()
            return -rate / r_max, rate, {}
        w_raw, om, ga = head(feats, h)
        ur = user_rates(h, _transmit(w_raw, om, ga).to(h.dtype))
        big = req[:, 0] >= 1e3
        small = ~big
        n_big, n_small = big.sum().clamp_min(1), small.sum().clamp_min(1)
        l_max = -(ur.sum(-1) * big).sum() / n_big / r_max
        l_ar = ((((ur - req) / (r_max / ur.shape[-1])) ** 2).mean(-1) * small).sum() / n_small
        e_max = self.p_tx_w + self.p_rf_w * h.shape[-1]
        e = energy(om, ga, self.p_tx_w, self.p_rf_w) / e_max
        l_ec = (e * small).sum() / n_small
        with torch.no_grad():
            rel = ((ur - req).abs() / req.clamp_min(1e-3)).mean(-1)
            stats = {
                "rel_rate_error": float((rel * small).sum() / n_small),
                "energy_ratio": float(l_ec),
                "antennas_on": float((om.sum(-1) * small).sum() / n_small),
            }
        rate = (ur.sum(-1) * big).sum() / n_big
        return l_max + self.mu * l_ar + (1 - self.mu) * l_ec, rate, stats

    def loss(self, model: FMPrecoder, batch: dict, step: int):
        """Site-weighted objective of every dataset head plus the default head's (module docstring) ->
        (loss, metrics)."""
        phase2 = step >= self.pretrain_steps
        rmax = self.rmax(batch.get("config"))
        max_req = lambda h: torch.full(h.shape[:-1], 1e3, device=h.device)  # noqa: E731
        h_all = torch.cat(batch["h"])
        req_all = torch.cat(batch["requests"]) if phase2 else max_req(h_all)
        feats = model.extractor(h_all, torch.log1p(req_all))
        b = batch["h"][0].shape[0]
        rates, objs, stats = [], [], []
        for e, h in enumerate(batch["h"]):
            if model.cfg.input_form == "user":  # ψ_e from the maximum-rate rows, as adaptation computes ψ
                rows = feats[e * b : (e + 1) * b]
                model.record_head_feature(e, rows[batch["requests"][e][:, 0] >= 1e3] if phase2 else rows)
            r_e = float(rmax[e, batch["snr_index"][e]])
            obj, rate, st = self.head_objective(
                model.heads[e], feats[e * b : (e + 1) * b], h, batch["requests"][e] if phase2 else None, r_e
            )
            objs.append(obj)
            rates.append(rate)
            stats.append(st)
        rates_t = torch.stack(rates)
        rmax_e = rmax[torch.arange(len(rates)), torch.tensor(batch["snr_index"])].to(rates_t.device)
        alpha = self._site_weights(rates_t, rmax_e)  # Algorithm 1: α_e from (R_e − R_e^max)²
        main = (alpha * torch.stack(objs)).sum()
        # default head: every dataset, detached features (it does not shape the extractor)
        hd = batch["default_h"]
        req_d = batch["default_requests"] if phase2 else max_req(hd)
        fd = model.extractor(hd, torch.log1p(req_d)).detach()
        if model.cfg.input_form == "user":
            model.record_head_feature(model.default_head, fd[req_d[:, 0] >= 1e3] if phase2 else fd)
        obj_d, rd, st_d = self.head_objective(
            model.heads[model.default_head],
            fd,
            hd,
            req_d if phase2 else None,
            float(rmax[:, batch["default_snr_index"]].mean()),
        )
        metrics = {
            "sum_rate": float(rates_t.mean().detach()),
            "ratio_to_wmmse": float((rates_t / rmax_e).mean().detach()),
            "default_sum_rate": float(rd.detach()),
            "phase": 2 if phase2 else 1,
        }
        if phase2:
            metrics.update({k: sum(s[k] for s in stats) / len(stats) for k in stats[0]})
            metrics.update({f"default_{k}": v for k, v in st_d.items()})
        return main + obj_d, metrics

    @torch.no_grad()
    def evaluate(self, model: FMPrecoder) -> dict[str, float]:
        """Default head on a fixed draw of the training datasets, as a ratio to WMMSE, at each grid SNR.

        (Held-out sites are evaluated with ``mimofm eval``, never here.)
        """
        out = {}
        data = self.datasets()
        for si, snr in enumerate(self.snr_grid_db):
            ratios = []
            for config in self.configurations():
                hs = torch.cat([self._draw(d, 16, 20_000 + e, snr, config) for e, d in enumerate(data)])
                r = user_rates(hs, model(hs).w).sum(-1).mean()
                ratios.append(float(r / self.rmax(config)[:, si].mean()))
            out[f"default_ratio_to_wmmse@{snr:g}dB"] = sum(ratios) / len(ratios)
        return out
