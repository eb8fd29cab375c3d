"""fm deployment at a new site: zero-shot, few-shot and full adaptation of the default output head.

* **Zero-shot**: the pretrained feature extractor with its default head (nothing to do).
* **Few-shot, user-form checkpoint** (no training data needed): ``shots`` local positions -> ``ψ_d``, the
  mean extractor feature of multi-user samples drawn from them (maximum-rate requests, every grid SNR, as
  pretraining recorded ``ψ_e``) -> cosine with each dataset head's ``ψ_e`` (``model.head_features[:-1]``)
  -> the ``top_n`` most similar heads. The new default head starts from their parameters averaged with
  the **normalized cosines** ``w_i = max(c_i, 0) / Σ_j max(c_j, 0)`` as weights, and trains on the local
  shots only. Normalized cosines rather than a softmax: the ``top_n`` cut already does the selecting, the
  cosines of mean features of one extractor sit close together (so either rule is near-uniform within
  the cut, a softmax only through a temperature that would need tuning), and ``top_n=1`` copies the most
  similar head exactly. ``ψ_d`` becomes the new head's row of ``head_features``.
* **Few-shot, fixed-configuration (antenna-form) checkpoint**: as before — the ``top_n`` most similar
  *training datasets* (site files, default ``catalog:train``; ``ψ_e`` computed from them) plus the local
  samples, starting from the default head (fm paper, Section III-C).
* **Full**: a new head trained on every local train-split position, starting from the default head.

The extractor (and every other head) stays frozen. **Objective**: what fm serves, fm's phase-2
pretraining objective (:class:`mimofm.training.fm_recipe.FMRecipe`): random requests ``R*_u ~ U(0,1)``
scaled to ``β·R^max`` (``β ~ U(0,1)``), loss ``μ·L_AR + (1−μ)·L_EC`` (rate error and energy of eq. 4 with
the head's antenna mask and power), a quarter of each batch with maximum-rate requests and the loss
``−R/R^max``. ``R^max`` is WMMSE's (10 iterations) mean sum rate on the adaptation datasets at the
batch's SNR, ``K`` users on the file's ``N_t`` antennas.

:func:`adapt_fm` also reports, before (zero-shot) and after, on held-out local positions
(:func:`mimofm.adaptation.common.held_out`): the maximum-rate sum rate as a ratio to WMMSE on the same
samples, the mean relative per-user rate error ``|r_u − R*_u| / max(R*_u, 0.1)`` on the requests QoS power
minimization can meet at full power, and the energy ``E(Ω, γ)`` over all antennas on at full power, both
for fm as served (exact power layer and antenna switch-off). Training goes through the shared loop, so
adaptation runs have checkpoints, logs and resume like any other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mimofm.adaptation.common import (
    DEFAULT_SNR_GRID_DB,
    HeldOut,
    adaptation_config,
    check_configuration,
    finish_run,
    held_out,
    local_dataset,
    local_indices,
    site_split,
)
from mimofm.channels.site_data import ReferenceRates, load_datasets
from mimofm.channels.site_data import draw_samples as _samples
from mimofm.channels.types import Dataset
from mimofm.core.energy import energy
from mimofm.core.linkbudget import median_gain
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMPrecoder
from mimofm.models.zoo import fm_config, load_fm, shipped_checkpoint
from mimofm.precoders.qos import qos_power_min
from mimofm.training.fm_recipe import FMRecipe
from mimofm.training.recipes import resolve_sites
from mimofm.training.trainer import train

__all__ = [
    "FMHeldOut",
    "HeadAdaptation",
    "adapt_fm",
    "dataset_feature",
    "fm_held_out",
    "fm_report",
    "head_dataset_names",
    "head_weights",
    "init_head",
    "local_feature",
    "similar_datasets",
    "similar_heads",
]

ERROR_FLOOR = 0.1  # bit/s/Hz: requests below it count as this in the relative rate error (as `mimofm eval`)


@torch.no_grad()
def dataset_feature(model: FMPrecoder, h: torch.Tensor) -> torch.Tensor:
    """``ψ = mean_i f_θ(H_i)``: mean extractor feature over samples and tokens at maximum-rate requests,
    ``h`` ``[S, K, N]`` -> ``[d]``."""
    rates = torch.full(h.shape[:-1], 1e3)
    return model.extractor(h.to(torch.complex64), torch.log1p(rates)).mean(dim=(0, 1))


@torch.no_grad()
def local_feature(
    model: FMPrecoder,
    local: Dataset,
    num_ue: int,
    snr_grid_db: list[float],
    samples: int = 32,
    seed: int = 0,
) -> torch.Tensor:
    """``ψ_d`` ``[d]``: :func:`dataset_feature` of ``samples`` multi-user samples ``[samples, num_ue, N]``
    drawn from the local positions at each grid SNR (dB), averaged over the SNRs (pretraining recorded each
    head's ``ψ_e`` over the grid too)."""
    feats = [
        dataset_feature(model, _samples(local, samples, num_ue, 3000 + 100 * seed + si, snr))
        for si, snr in enumerate(snr_grid_db)
    ]
    return torch.stack(feats).mean(0)


def similar_heads(model: FMPrecoder, psi_d: torch.Tensor, top_n: int = 5) -> list[tuple[int, float]]:
    """Indices and cosine similarities of the ``top_n`` dataset heads whose recorded ``ψ_e``
    (``model.head_features[:-1]``, user form) is closest to ``psi_d`` ``[d]``, best first; heads with no
    recorded feature (an all-zero row) are left out, so an empty list means the checkpoint records none."""
    feats = getattr(model, "head_features", None)
    if feats is None:
        raise MimofmInputError("head similarity needs a user-form fm checkpoint (it records ψ_e per head)")
    rows = feats[:-1].double()  # [heads - 1, d]
    known = np.flatnonzero((rows != 0).any(-1).numpy())
    if top_n < 1 or known.size == 0:
        return []
    cos = torch.nn.functional.cosine_similarity(rows[known], psi_d.double()[None], dim=-1)  # [known]
    order = torch.argsort(cos, descending=True)[:top_n]
    return [(int(known[int(i)]), float(cos[int(i)])) for i in order]


def head_weights(cosines: list[float]) -> list[float]:
    """Normalized cosines ``max(c_i, 0) / Σ_j max(c_j, 0)`` (equal weights when none is positive)."""
    c = np.clip(np.asarray(cosines, dtype=np.float64), 0.0, None)
    if c.sum() <= 0:
        return [1.0 / len(cosines)] * len(cosines)
    return [float(x) for x in c / c.sum()]


@torch.no_grad()
def init_head(model: FMPrecoder, head_init: list) -> None:
    """Set the default head's parameters to ``Σ_i w_i · θ_i`` over ``head_init`` ``[[head index, w_i], ...]``
    (weights summing to 1), in place."""
    if not head_init:
        return
    if any(not 0 <= int(i) < model.default_head for i, _ in head_init):
        raise MimofmInputError(f"`head_init` indices must be dataset heads 0..{model.default_head - 1}")
    target = model.heads[model.default_head].state_dict()
    sources = [(model.heads[int(i)].state_dict(), float(w)) for i, w in head_init]
    avg = {k: sum(w * sd[k].double() for sd, w in sources).to(v.dtype) for k, v in target.items()}
    model.heads[model.default_head].load_state_dict(avg)


def head_dataset_names(checkpoint: str | None, num_dataset_heads: int) -> list[str] | None:
    """The training dataset of each dataset head, ``<site file stem>/<los|nlos>``, from the checkpoint
    card's recipe (``config.recipe``: ``sites`` × ``mixes``, the order of
    :func:`~mimofm.channels.site_data.load_datasets`); None when the card does not determine them (no
    recipe, or a count that differs: a site without LOS or NLOS users was skipped in training)."""
    stem = Path(checkpoint) if checkpoint else shipped_checkpoint("fm")
    try:
        card = json.loads(stem.with_suffix(".json").read_text())
        recipe = card["config"]["recipe"]
        sites, mixes = list(recipe["sites"]), list(recipe.get("mixes") or ["los", "nlos"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    names = [f"{Path(str(s)).stem}/{m}" for s in sites for m in mixes]
    return names if len(names) == num_dataset_heads else None


def similar_datasets(
    model: FMPrecoder,
    training: list[Dataset],
    local: Dataset,
    *,
    shots: int = 10,
    top_n: int = 5,
    snr_db: float = 20.0,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """Indices and cosine similarities of the ``top_n`` training datasets closest to the local site
    (fixed-configuration checkpoints, which record no ``ψ_e``).

    The local feature uses ``shots`` multi-user samples ``[shots, K, N]`` drawn from the local positions
    at ``snr_db`` (dB, site-median SNR), each training dataset's 64 samples; features as
    :func:`dataset_feature`.
    """
    k = model.cfg.num_ue
    psi_d = dataset_feature(model, _samples(local, shots, k, seed, snr_db))
    sims = []
    for e, d in enumerate(training):
        psi_e = dataset_feature(model, _samples(d, 64, k, 1000 + e, snr_db))
        sims.append(float(torch.nn.functional.cosine_similarity(psi_e, psi_d, dim=0)))
    order = np.argsort(sims)[::-1][:top_n]
    return [(int(i), sims[int(i)]) for i in order]


@dataclass
class HeadAdaptation:
    """A recipe for the shared loop: train the default head on ``datasets`` with fm's objective (module
    docstring), the extractor and the other heads frozen.

    ``head_init`` ``[[head index, weight], ...]``: the head starts from that weighted average of dataset
    heads (empty: from the default head); ``psi``: ``ψ_d`` ``[d]``, recorded as the new head's
    ``head_features`` row (user form; empty: unchanged); ``num_ue``: users per sample (None: the
    checkpoint's); samples use the datasets' own antennas.
    """

    checkpoint: str | None  # None: the shipped checkpoint
    datasets: list[Dataset] = field(default_factory=list, repr=False)
    dataset_names: list[str] = field(default_factory=list)
    num_ue: int | None = None
    head_init: list = field(default_factory=list)
    psi: list[float] = field(default_factory=list, repr=False)
    snr_grid_db: list[float] = field(default_factory=lambda: list(DEFAULT_SNR_GRID_DB))
    batch_size: int = 128
    mu: float = 0.98
    rmax_samples: int = 32
    rmax_iterations: int | None = 10
    seed: int = 0
    name: str = "fm"

    def __post_init__(self) -> None:
        self._rmax: ReferenceRates | None = None
        self._obj: FMRecipe | None = None

    def config(self) -> dict:
        """The recipe as saved with the checkpoint (dataset names, not their channels)."""
        d = asdict(self)
        d.pop("datasets")
        d["mode"] = "head-adaptation"
        return d

    def users(self) -> int:
        """Users per sample: ``num_ue``, else the checkpoint's."""
        return int(self.num_ue) if self.num_ue is not None else fm_config(self.checkpoint).num_ue

    def objective(self) -> FMRecipe:
        """fm's pretraining recipe with ``mu`` and the checkpoint's energy model (``P_TX``, ``P_RF``): its
        request draw (``requests``) and one-head objective (``head_objective``) are adaptation's."""
        if self._obj is None:
            cfg = fm_config(self.checkpoint)
            self._obj = FMRecipe(mu=self.mu, p_tx_w=cfg.p_tx_w, p_rf_w=cfg.p_rf_w)
        return self._obj

    def rmax(self) -> torch.Tensor:
        """``[datasets, SNR grid]`` ``R^max``: WMMSE's mean sum rate (``rmax_iterations``) per dataset and
        grid SNR, at ``num_ue`` users on the datasets' antennas; computed once."""
        if not self.datasets:
            raise MimofmInputError("head adaptation needs at least one dataset")
        if self._rmax is None:
            self._rmax = ReferenceRates(
                self.datasets, self.snr_grid_db, self.rmax_samples, self.rmax_iterations
            )
        return self._rmax(self.users(), int(self.datasets[0].h.shape[-1]))

    def build_model(self) -> FMPrecoder:
        """A copy of the checkpoint, its default head initialised from ``head_init``, only that head
        trainable (and ``R^max`` computed, so a bad dataset fails before training)."""
        base = load_fm(self.checkpoint)
        model = FMPrecoder(base.cfg)
        model.load_state_dict(base.state_dict())
        init_head(model, self.head_init)
        if self.psi and hasattr(model, "head_features"):
            model.head_features[model.default_head] = torch.tensor(self.psi, dtype=model.head_features.dtype)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.heads[model.default_head].parameters():
            p.requires_grad_(True)
        self.rmax()
        return model

    def _draw(self, rng: np.random.Generator) -> dict:
        """One batch from ``rng``: ``h`` ``[batch_size, K, N]`` from random datasets at one grid SNR (rows
        shuffled), requests ``[batch_size, K]`` (first quarter maximum-rate), and ``r_max`` (the datasets'
        mean ``R^max`` at that SNR)."""
        k = self.users()
        si = int(rng.integers(len(self.snr_grid_db)))
        snr = self.snr_grid_db[si]
        counts = np.bincount(
            rng.integers(len(self.datasets), size=self.batch_size), minlength=len(self.datasets)
        )
        h = torch.cat(
            [
                _samples(d, int(c), k, int(rng.integers(2**62)), snr)
                for d, c in zip(self.datasets, counts)
                if c
            ]
        )
        h = h[torch.from_numpy(rng.permutation(self.batch_size))]
        r_max = float(self.rmax()[:, si].mean())
        return {"h": h, "requests": self.objective().requests(rng, self.batch_size, k, r_max), "r_max": r_max}

    def batch(self, step: int) -> dict:
        """The batch of ``step`` (deterministic in the seed and ``step``): see :meth:`_draw`."""
        return self._draw(np.random.default_rng([self.seed, step, 17]))

    def loss(self, model: FMPrecoder, batch: dict, step: int):
        """fm's objective of the default head on ``batch`` (``h`` ``[B, K, N]``) -> (loss, metrics:
        maximum-rate sum rate in bit/s/Hz and over ``R^max``, relative rate error, energy ratio, antennas
        on)."""
        model.extractor.eval()  # frozen: no dropout either
        h, req, r_max = batch["h"], batch["requests"], float(batch["r_max"])
        with torch.no_grad():
            feats = model.extractor(h, torch.log1p(req))
        obj, rate, stats = self.objective().head_objective(
            model.heads[model.default_head], feats, h, req, r_max
        )
        return obj, {"sum_rate": float(rate.detach()), "ratio_to_rmax": float(rate.detach()) / r_max, **stats}

    @torch.no_grad()
    def evaluate(self, model: FMPrecoder) -> dict[str, float]:
        """The objective on a fixed draw of the adaptation datasets (four batches, the same for every call):
        ``objective`` (minus the loss; higher is better) and the loss's metrics, averaged."""
        rng = np.random.default_rng([self.seed, 10**9, 17])
        rows = [self.loss(model, self._draw(rng), 0) for _ in range(4)]
        out = {"objective": -sum(float(loss) for loss, _ in rows) / len(rows)}
        for key in rows[0][1]:
            out[key] = sum(m[key] for _, m in rows) / len(rows)
        return out


@dataclass
class FMHeldOut:
    """The held-out draws of :class:`~mimofm.adaptation.common.HeldOut` with, per grid SNR, random requests
    ``[S, K]`` (``R*_u ~ U(0,1)`` scaled to ``β·`` the sample's WMMSE sum rate, ``β ~ U(0,1)``) and whether
    QoS power minimization meets them within full power (``feasible`` ``[S]``)."""

    held: HeldOut
    requests: list[torch.Tensor]
    feasible: list[torch.Tensor]
    p_tx_w: float
    p_rf_w: float


def fm_held_out(held: HeldOut, p_tx_w: float, p_rf_w: float, seed: int = 0) -> FMHeldOut:
    """Random requests and their QoS feasibility on ``held``'s draws (energy model ``P_TX``, ``P_RF``
    in W)."""
    reqs, feas = [], []
    for si, (h, ref) in enumerate(zip(held.h, held.wmmse_rate)):
        rng = np.random.default_rng([seed, si, 31])
        u = rng.uniform(size=tuple(h.shape[:-1]))
        beta = rng.uniform(size=(h.shape[0], 1))
        req = torch.from_numpy(u / u.sum(1, keepdims=True) * beta) * ref[:, None]
        reqs.append(req)
        feas.append(qos_power_min(h.to(torch.complex128), req, max_power=1.0).within_budget)
    return FMHeldOut(held, reqs, feas, p_tx_w, p_rf_w)


@torch.no_grad()
def fm_report(model: FMPrecoder, ev: FMHeldOut) -> dict[str, float | None]:
    """fm (default head, as served) on the held-out draws: ``ratio_to_wmmse`` (maximum-rate mode),
    ``rel_rate_error`` (mean relative per-user rate error on the feasible requests; None if none is),
    ``energy_ratio`` (mean ``E(Ω, γ)`` over all antennas on at full power) and ``feasible_fraction``."""
    model.eval()
    ratio = ev.held.ratio_to_wmmse(lambda h: model(h).w)
    errs, oks, energies = [], [], []
    for h, req, ok in zip(ev.held.h, ev.requests, ev.feasible):
        out = model(h, rates=req.float(), energy_w=(ev.p_tx_w, ev.p_rf_w))
        ur = user_rates(h.to(torch.complex128), out.w.to(torch.complex128))
        errs.append(((ur - req).abs() / req.clamp_min(ERROR_FLOOR)).mean(-1))
        oks.append(ok)
        e_max = ev.p_tx_w + ev.p_rf_w * h.shape[-1]
        energies.append(energy(out.omega.double(), out.gamma.double(), ev.p_tx_w, ev.p_rf_w) / e_max)
    err, ok = torch.cat(errs), torch.cat(oks)
    return {
        "ratio_to_wmmse": ratio,
        "rel_rate_error": float(err[ok].mean()) if bool(ok.any()) else None,
        "energy_ratio": float(torch.cat(energies).mean()),
        "feasible_fraction": float(ok.double().mean()),
    }


def adapt_fm(
    cs,
    shots: str | int,
    *,
    checkpoint: str | None = None,
    num_ue: int | None = None,
    training_files: list[str] | None = None,
    top_n: int = 5,
    steps: int = 300,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str = "runs/adapt",
    progress: bool = True,
    log=print,
    snr_grid_db: list[float] | None = None,
    eval_samples: int = 64,
) -> dict:
    """Adapt fm to the site ``cs`` (a :class:`~mimofm.channels.types.ChannelSet`; a file without a position
    split gets one, :func:`~mimofm.adaptation.common.site_split`) for ``num_ue`` users (None: the
    checkpoint's) on the file's antennas.

    ``shots="full"``: a new head on every local train-split position. ``shots=n``: ``n`` local positions
    (drawn from the train split with ``seed``); a user-form checkpoint picks its ``top_n`` most similar
    heads from their recorded features and trains on the shots only, a fixed-configuration one adds its
    ``top_n`` most similar training datasets (files ``training_files``, default: the catalog's training
    sites). Returns the shared loop's result dict plus ``similar`` (names or ``head <i>``, cosines; few-shot
    only), ``head_init``, ``split`` and ``report`` (``zero-shot`` / ``adapted`` on held-out local
    positions), all also written to ``<out_dir>/adaptation.json``.
    """
    base = load_fm(checkpoint)
    k = base.cfg.num_ue if num_ue is None else int(num_ue)
    n = cs.num_bs_ant
    check_configuration("fm", base.cfg, k, n)
    grid = [float(s) for s in (snr_grid_db or DEFAULT_SNR_GRID_DB)]
    split = site_split(cs, out_dir, seed, log=log)
    idx, label = local_indices(split.codes, shots, k, seed)
    local = local_dataset(cs.h[torch.from_numpy(idx)], f"{cs.name}/{label}", median_gain(cs.h))
    user_form = base.cfg.input_form == "user"
    similar: list[tuple[str, float]] = []
    head_init: list[list] = []
    psi = local_feature(base, local, k, grid, seed=seed).tolist() if user_form else []
    if str(shots) == "full":
        datasets = [local]
        log(f"full adaptation on {idx.size} local positions ({k} users × {n} antennas)")
    elif user_form:
        datasets = [local]
        top = similar_heads(base, torch.tensor(psi), top_n)
        if not top:
            log("the checkpoint records no head features: the new head starts from the default head")
        names = head_dataset_names(checkpoint, base.cfg.num_output_heads - 1)
        weights = head_weights([c for _, c in top]) if top else []
        for (i, c), w in zip(top, weights):
            label_i = names[i] if names else f"head {i}"
            log(f"  similar head {i:3d}  {label_i:24s} cosine {c:.4f}  weight {w:.3f}")
            similar.append((label_i, c))
            head_init.append([i, w])
        log(f"few-shot adaptation on {idx.size} local positions only ({k} users × {n} antennas)")
    else:
        if training_files is None:
            training_files = resolve_sites("catalog:train")
        training = load_datasets(training_files, k)
        top = similar_datasets(base, training, local, shots=int(shots), top_n=top_n, seed=seed)
        similar = [(training[i].name, sim) for i, sim in top]
        for name, sim in similar:
            log(f"  similar: {name:22s} cosine {sim:.4f}")
        datasets = [training[i] for i, _ in top] + [local]
    held = held_out(cs, split.codes, idx, k, grid, eval_samples, seed)
    log(f"report on {held.num_positions} held-out positions ({held.which}), {eval_samples} samples per SNR")
    ev = fm_held_out(held, base.cfg.p_tx_w, base.cfg.p_rf_w, seed)
    before = fm_report(base, ev)
    rec = HeadAdaptation(
        checkpoint=checkpoint,
        datasets=datasets,
        dataset_names=[d.name for d in datasets],
        num_ue=k,
        head_init=head_init,
        psi=psi,
        snr_grid_db=grid,
        seed=seed,
    )
    out = train(rec, adaptation_config(steps, lr, out_dir, seed), progress=progress)
    after = fm_report(out["model"], ev)
    report = {"zero-shot": before, "adapted": after}
    extra = {"num_ue": k, "num_bs_ant": n, "similar": [list(s) for s in similar], "head_init": head_init}
    return finish_run(out, out_dir, "fm", cs, shots, split, held, report, **extra)
