"""fm deployment at a new site: zero-shot, few-shot (similarity-augmented) and full adaptation.

* **Zero-shot**: the pretrained feature extractor with its default head (nothing to do).
* **Few-shot**: ``shots`` local channel samples -> mean feature ``ψ_d`` of the frozen extractor ->
  cosine similarity with every training dataset's ``ψ_e`` -> a new head trained on the ``top_n`` most
  similar training datasets plus the local samples (fm paper, Section III-C).
* **Full**: a new head trained on the site's local training positions only.

The new head starts from the default head; the extractor stays frozen. Training goes through the
shared loop, so adaptation runs have checkpoints, logs and resume like any other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.adaptation.common import adaptation_config, local_positions, rzf_ratio_report
from mimofm.channels.site_data import draw_samples as _samples
from mimofm.channels.site_data import load_datasets
from mimofm.channels.types import Dataset
from mimofm.core.rates import user_rates
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMPrecoder
from mimofm.models.zoo import load_fm
from mimofm.precoders.linear import rzf
from mimofm.precoders.structured import transmit
from mimofm.training.recipes import resolve_sites
from mimofm.training.trainer import train

__all__ = [
    "HeadAdaptation",
    "adapt_fm",
    "dataset_feature",
    "similar_datasets",
]


@torch.no_grad()
def dataset_feature(model: FMPrecoder, h: torch.Tensor) -> torch.Tensor:
    """``ψ = mean_i f_θ(H_i)``: mean extractor feature over samples and tokens, ``h`` ``[S, K, N]`` ->
    ``[d]``."""
    rates = torch.full(h.shape[:-1], 1e3)
    return model.extractor(h.to(torch.complex64), torch.log1p(rates)).mean(dim=(0, 1))


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
    """Indices and cosine similarities of the ``top_n`` training datasets closest to the local site.

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
    """A recipe for the shared loop: train a new default head on ``datasets`` with a frozen extractor."""

    checkpoint: str | None  # None: the shipped checkpoint
    datasets: list[Dataset] = field(default_factory=list, repr=False)
    dataset_names: list[str] = field(default_factory=list)
    snr_grid_db: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0, 30.0])
    batch_size: int = 128
    seed: int = 0
    name: str = "fm"

    def config(self) -> dict:
        """The recipe as saved with the checkpoint (dataset names, not their channels)."""
        d = asdict(self)
        d.pop("datasets")
        d["mode"] = "head-adaptation"
        return d

    def build_model(self) -> FMPrecoder:
        """A copy of the checkpoint with its extractor frozen (only the heads train)."""
        if not self.datasets:
            raise MimofmInputError("head adaptation needs at least one dataset")
        base = load_fm(self.checkpoint)
        model = FMPrecoder(base.cfg)
        model.load_state_dict(base.state_dict())
        for p in model.extractor.parameters():
            p.requires_grad_(False)
        return model

    def batch(self, step: int) -> torch.Tensor:
        """SNR-scaled samples ``[batch_size, 4, N]`` from random datasets at one grid SNR, deterministic
        in ``step``."""
        rng = np.random.default_rng([self.seed, step, 17])
        k = 4
        picks = rng.integers(len(self.datasets), size=self.batch_size)
        snr = self.snr_grid_db[int(rng.integers(len(self.snr_grid_db)))]
        return torch.cat(
            [_samples(self.datasets[int(e)], 1, k, int(rng.integers(2**62)), snr) for e in picks]
        )

    def loss(self, model: FMPrecoder, h: torch.Tensor, step: int):
        """``h`` ``[B, K, N]`` -> (minus the default head's sum rate over RZF's on the batch, metrics in
        bit/s/Hz)."""
        model.extractor.eval()  # frozen: no dropout either
        feats = model.extractor(h, torch.log1p(torch.full(h.shape[:-1], 1e3)))
        w = transmit(*model.heads[model.default_head](feats, h, full_power=True))
        r = user_rates(h, w.to(h.dtype)).sum(-1).mean()
        ref = user_rates(h, rzf(h)).sum(-1).mean()  # the batch's RZF rate: every SNR weighs the same
        return -r / ref, {"sum_rate": float(r.detach()), "ratio_to_rzf": float(r.detach() / ref)}

    def evaluate(self, model: FMPrecoder) -> dict[str, float]:
        """Mean sum rate (bit/s/Hz) and ratio to RZF on a fixed draw of the adaptation datasets
        (``[32·datasets, K, N]`` per SNR), at each grid SNR."""
        return rzf_ratio_report(lambda h: model(h).w, self.datasets, self.snr_grid_db)


def adapt_fm(
    cs,
    shots: str | int,
    *,
    checkpoint: str | None = None,
    training_files: list[str] | None = None,
    top_n: int = 5,
    steps: int = 300,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str = "runs/adapt",
    progress: bool = True,
    log=print,
) -> dict:
    """Adapt fm to the site ``cs`` (a :class:`~mimofm.channels.io.ChannelSet` with a position split).

    ``shots="full"``: a new head on every local train-split position. ``shots=n``: ``n`` local positions
    (drawn from the train split with ``seed``) -> the ``top_n`` most similar training datasets (files
    ``training_files``, default: the catalog's training sites) plus the local samples. Returns the
    shared loop's result dict plus ``"similar"`` (names and cosines, few-shot only).
    """
    model = load_fm(checkpoint)
    local = local_positions(cs, shots, model.cfg.num_ue, seed)
    similar = []
    if str(shots) == "full":
        datasets = [local]
        log(f"full adaptation on {local.h.shape[0]} local positions")
    else:
        if training_files is None:
            training_files = resolve_sites("catalog:train")
        training = load_datasets(training_files, model.cfg.num_ue)
        top = similar_datasets(model, training, local, shots=int(shots), top_n=top_n, seed=seed)
        similar = [(training[i].name, sim) for i, sim in top]
        for name, sim in similar:
            log(f"  similar: {name:22s} cosine {sim:.4f}")
        datasets = [training[i] for i, _ in top] + [local]
    rec = HeadAdaptation(
        checkpoint=checkpoint, datasets=datasets, dataset_names=[d.name for d in datasets], seed=seed
    )
    out = train(
        rec,
        adaptation_config(steps, lr, out_dir, seed),
        progress=progress,
    )
    out["similar"] = similar
    return out
