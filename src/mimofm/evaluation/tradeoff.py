"""Rate-target (trade-off) evaluation: fm's energy against classical QoS power minimization.

The fm paper's Fig. 3 protocol on mimofm's data. For every site and SNR point, multi-user samples are
drawn once (test positions by default); each sample gets per-user requests, either fixed
(``rate_targets``, bit/s/Hz per user) or random, ``R*_u ~ U(0,1)`` scaled to sum to ``β·R^WMMSE``
(``β`` from ``betas``, ``R^WMMSE`` the sample's own WMMSE sum rate at full power). Then:

* ``fm``: the model with the requests as its rate token (and, unless ``exact_rates`` is off, its exact
  power layer: the least powers meeting the requests with fm's beams, then antennas switched off on
  those beams while the energy falls, for this evaluation's ``P_TX``, ``P_RF``); achieved per-user rates
  ``r_u``, the energy
  ``E(Ω, γ)`` of eq. 4 and the relative per-user rate error ``|r_u − R*_u| / max(R*_u, floor)``, over
  all samples and over the samples whose requests can be met at all (QoS feasible at full power);
* ``qos@fm-rates``: the least power reaching exactly fm's achieved rates with every antenna on
  (uplink-downlink duality), energy ``P·P_TX + N·P_RF`` — the classical baseline *at the same rates*;
* ``greedy@fm-rates``: the same with greedy antenna switch-off (on the first ``greedy_samples`` samples,
  it is ``O(N²)`` QoS solves per sample);
* ``qos@requests``: the classical answer to the requests themselves (feasible fraction reported: a
  request above what full power can reach has no QoS solution).

Energies in watts (``p_tx_w``, ``p_rf_w``); rates recomputed from each precoder with
:func:`mimofm.core.rates.user_rates`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.channels.types import ChannelSet
from mimofm.core.energy import energy
from mimofm.core.linkbudget import LinkBudget, SNRSpec
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.evaluate import machine_info, sample_users, summarize_ci
from mimofm.precoders.qos import greedy_antenna_selection, qos_power_min
from mimofm.precoders.structured import SERVED_OWN, SERVED_QOS
from mimofm.precoders.wmmse import wmmse

__all__ = ["TradeoffConfig", "evaluate_tradeoff", "random_requests", "relative_rate_error"]


@dataclass
class TradeoffConfig:
    """Everything that determines a trade-off evaluation (saved in the result JSON)."""

    snr_db: list[float] = field(default_factory=lambda: [10.0, 20.0])
    rate_targets: list[float] | None = None  # fixed per-user requests; None: random requests over `betas`
    betas: list[float] = field(default_factory=lambda: [0.2, 0.4, 0.6, 0.8])
    num_ue: int = 4
    samples: int = 200
    seed: int = 0
    positions: str = "test"
    p_tx_w: float = 20.0
    p_rf_w: float = 1.0
    greedy_samples: int = 20
    error_floor: float = 0.1  # bit/s/Hz: requests below it count as this in the relative error
    chunk: int = 250
    exact_rates: bool = True  # fm's exact power layer (FMPrecoder.forward); False: the network's own powers

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` for rate targets of the wrong length or sign, ``betas`` outside
        (0, 1], too few samples, or non-positive powers or error floor."""
        if self.rate_targets is not None:
            if len(self.rate_targets) != self.num_ue:
                raise MimofmInputError(
                    f"`--rate-targets` needs one rate per user ({self.num_ue}), got {len(self.rate_targets)}"
                )
            if any(not (math.isfinite(r) and r >= 0) for r in self.rate_targets):
                raise MimofmInputError(
                    f"`--rate-targets` must be finite and >= 0 bit/s/Hz, got {self.rate_targets}"
                )
        if not self.betas or any(not (0 < b <= 1) for b in self.betas):
            raise MimofmInputError(f"`betas` must be in (0, 1], got {self.betas}")
        if self.samples < 2 or self.greedy_samples < 0 or self.num_ue < 1:
            raise MimofmInputError("`samples` must be >= 2, `greedy_samples` >= 0 and `num_ue` >= 1")
        if not (self.p_tx_w > 0 and self.p_rf_w >= 0 and self.error_floor > 0):
            raise MimofmInputError("`p_tx_w` and `error_floor` must be > 0 and `p_rf_w` >= 0")


def random_requests(r_max: torch.Tensor, num_ue: int, beta: float, seed: int) -> torch.Tensor:
    """``[S, K]`` requests ``R*_u ~ U(0,1)`` scaled to sum to ``beta · r_max`` (``r_max`` ``[S]``)."""
    u = torch.from_numpy(np.random.default_rng(seed).uniform(size=(r_max.shape[0], num_ue)))
    return u / u.sum(-1, keepdim=True) * beta * r_max.double()[:, None]


def relative_rate_error(achieved: torch.Tensor, requested: torch.Tensor, floor: float) -> torch.Tensor:
    """``[S]`` mean over users of ``|r_u − R*_u| / max(R*_u, floor)``."""
    return ((achieved - requested).abs() / requested.clamp_min(floor)).mean(-1)


def _fm_run(
    model,
    hs: torch.Tensor,
    req: torch.Tensor,
    chunk: int,
    exact_rates: bool = True,
    energy_w: tuple[float, float] | None = None,
):
    """fm with requests -> achieved rates ``[S, K]``, Ω ``[S, N]``, γ ``[S]`` (float64), and how each
    sample was served ``[S]`` (:func:`mimofm.precoders.structured.exact_rates_or_keep`; all
    ``SERVED_OWN`` without ``exact_rates``)."""
    rates, om, ga, served = [], [], [], []
    with torch.no_grad():
        for i in range(0, hs.shape[0], chunk):
            h = hs[i : i + chunk]
            out = model(
                h.to(torch.complex64),
                rates=req[i : i + chunk].float(),
                exact_rates=exact_rates,
                energy_w=energy_w,
            )
            rates.append(user_rates(h, out.w.to(h.dtype)))
            om.append(out.omega.double())
            ga.append(out.gamma.double())
            served.append(
                out.served if out.served is not None else torch.full_like(out.gamma, SERVED_OWN).long()
            )
    return torch.cat(rates), torch.cat(om), torch.cat(ga), torch.cat(served)


def _row(
    base: dict,
    method: str,
    requested: torch.Tensor,
    achieved: torch.Tensor | None,
    energy_w: torch.Tensor | None,
    ok: torch.Tensor,
    **extra,
) -> dict:
    row = {
        **base,
        "method": method,
        "num_samples": int(ok.numel()),
        "feasible_fraction": float(ok.double().mean()),
        "requested_sum_rate_mean": float(requested.sum(-1).mean()),
    }
    if achieved is not None and bool(ok.any()):
        row["achieved_sum_rate_mean"] = float(achieved[ok].sum(-1).mean())
    if energy_w is not None and bool(ok.any()):
        row["energy_w_mean"], row["energy_w_ci95"] = summarize_ci(energy_w[ok].numpy())
    row.update(extra)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def evaluate_tradeoff(
    sets: list[ChannelSet],
    cfg: TradeoffConfig,
    model,
    *,
    link_budget: LinkBudget | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """fm with rate requests vs QoS power minimization (and greedy antenna switch-off) on ``sets``."""
    cfg.validate()
    budget = link_budget or LinkBudget()
    rows = []
    for cs in sets:
        h_users = sample_users(cs, cfg.num_ue, cfg.samples, cfg.seed, cfg.positions)
        n = cs.num_bs_ant
        for snr in cfg.snr_db:
            scale, _ = SNRSpec(snr_db=float(snr)).scale_for(cs.h, budget)
            hs = h_users * scale
            if progress:
                progress(f"{cs.name} · {snr:g} dB · WMMSE reference")
            r_max = wmmse(hs).sum_rate.double()
            points = (
                [("fixed", torch.tensor(cfg.rate_targets, dtype=torch.float64).expand(hs.shape[0], -1))]
                if cfg.rate_targets is not None
                else [
                    (b, random_requests(r_max, cfg.num_ue, b, cfg.seed + 1 + j))
                    for j, b in enumerate(cfg.betas)
                ]
            )
            for beta, req in points:
                base = {"site": cs.name, "snr_db": float(snr), "beta": beta}
                if progress:
                    progress(f"{cs.name} · {snr:g} dB · β {beta} · fm")
                ach, om, ga, served = _fm_run(
                    model, hs, req, cfg.chunk, cfg.exact_rates, (cfg.p_tx_w, cfg.p_rf_w)
                )
                e_fm = energy(om, ga, cfg.p_tx_w, cfg.p_rf_w)
                err = relative_rate_error(ach, req, cfg.error_floor)
                all_ok = torch.ones(hs.shape[0], dtype=torch.bool)
                e_mean, e_ci = summarize_ci(err.numpy())
                qr = qos_power_min(hs, req, max_power=1.0)  # which requests any precoder can meet
                feas = qr.within_budget
                rows.append(
                    _row(
                        base,
                        "fm",
                        req,
                        ach,
                        e_fm,
                        all_ok,
                        rel_rate_error_mean=e_mean,
                        rel_rate_error_ci95=e_ci,
                        rel_rate_error_feasible_mean=float(err[feas].mean()) if bool(feas.any()) else None,
                        antennas_on_mean=float(om.sum(-1).mean()),
                        gamma_mean=float(ga.mean()),
                        qos_beams_fraction=float((served == SERVED_QOS).double().mean()),
                    )
                )
                if progress:
                    progress(f"{cs.name} · {snr:g} dB · β {beta} · QoS baselines")
                q = qos_power_min(hs, ach, max_power=1.0)
                e_q = q.power.clamp(max=1.0) * cfg.p_tx_w + n * cfg.p_rf_w
                rows.append(
                    _row(
                        base,
                        "qos@fm-rates",
                        req,
                        ach,
                        e_q,
                        q.within_budget,
                        fm_energy_ratio=float((e_fm[q.within_budget] / e_q[q.within_budget]).mean())
                        if bool(q.within_budget.any())
                        else None,
                    )
                )
                if cfg.greedy_samples:
                    g = min(cfg.greedy_samples, hs.shape[0])
                    gs = greedy_antenna_selection(hs[:g], ach[:g], p_tx_w=cfg.p_tx_w, p_rf_w=cfg.p_rf_w)
                    rows.append(
                        _row(
                            base,
                            "greedy@fm-rates",
                            req[:g],
                            ach[:g],
                            gs.energy_w,
                            gs.feasible,
                            antennas_on_mean=float(gs.omega.sum(-1).mean()),
                            fm_energy_ratio=float((e_fm[:g][gs.feasible] / gs.energy_w[gs.feasible]).mean())
                            if bool(gs.feasible.any())
                            else None,
                        )
                    )
                e_qr = qr.power.clamp(max=1.0) * cfg.p_tx_w + n * cfg.p_rf_w
                rows.append(_row(base, "qos@requests", req, req, e_qr, qr.within_budget))
    return {
        "mimofm_result": "tradeoff",
        "config": asdict(cfg),
        "link_budget": budget.to_dict(),
        "machine": machine_info(),
        "results": rows,
    }
