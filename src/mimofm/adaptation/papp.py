"""papp fine-tuning at a new site (PaPP papers): self-supervised on the sum rate, the whole model, with
user-permutation augmentation, on a budget of local samples (10, 20, 40, 100, 1000 or every local
train-split position). Each user's channel is also turned by a random phase, which no rate sees: on the
validation sites it lifts what 40 samples recover of full fine-tuning's gain from 86% to 97%
(``benchmarks/papp_finetune_val.py``, which also chose the learning rate, 1e-3: on two seeds it gives a
higher total sum rate than 3e-4 with 40 samples and with all of them; ÷ WMMSE averaged over the SNRs it is
level with 40 samples and ahead with all of them, so the few-shot *recovery* ratio drops, 97.5% → 95.7%).

The batches draw multi-user samples from the local positions at the grid SNRs and shuffle the users'
order; the loss is the student's sum rate as a ratio to RZF's on the same batch (every SNR weighs the
same). Batch-norm statistics stay those of pretraining (a few local samples would make them noise).
Training goes through the shared loop (checkpoints, logs, resume).

Users per sample come from the caller (``--num-ue``), antennas from the file: a user-form checkpoint
serves any ``K <= N_t``, a fixed-configuration one refuses any other configuration before any work. A file
without a position split gets one (:func:`mimofm.adaptation.common.site_split`). :func:`finetune_papp`
reports the maximum-rate sum rate as a ratio to WMMSE on held-out local positions before (zero-shot) and
after, in ``<out_dir>/adaptation.json`` (papp serves the maximum sum rate only: no rate error or energy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.adaptation.common import (
    DEFAULT_SNR_GRID_DB,
    adaptation_config,
    check_configuration,
    finish_run,
    held_out,
    local_dataset,
    local_indices,
    rzf_ratio_report,
    site_split,
)
from mimofm.channels.sampling import permute_users, rotate_user_phases
from mimofm.channels.site_data import draw_samples
from mimofm.channels.types import Dataset
from mimofm.core.linkbudget import median_gain
from mimofm.core.rates import user_rates
from mimofm.models.papp import PaPP
from mimofm.models.zoo import load_papp, papp_config
from mimofm.precoders.linear import rzf
from mimofm.training.trainer import train

__all__ = ["PaPPFineTune", "finetune_papp"]


@dataclass
class PaPPFineTune:
    """A recipe for the shared loop: fine-tune a pretrained papp on local samples."""

    checkpoint: str | None  # None: the shipped checkpoint
    local: Dataset | None = field(default=None, repr=False)
    local_name: str = ""
    snr_grid_db: list[float] = field(default_factory=lambda: list(DEFAULT_SNR_GRID_DB))
    batch_size: int = 64
    num_ue: int | None = None  # users per sample (None: the checkpoint's)
    seed: int = 0
    phase_augment: bool = True  # also rotate each user's channel by a random phase (rates unchanged)
    name: str = "papp"

    def config(self) -> dict:
        """The recipe as saved with the checkpoint (the local positions' count, not their channels)."""
        d = asdict(self)
        d.pop("local")
        d["mode"] = "fine-tune"
        d["local_positions"] = int(self.local.h.shape[0]) if self.local is not None else 0
        return d

    def users(self) -> int:
        """Users per sample: ``num_ue``, else the checkpoint's."""
        return int(self.num_ue) if self.num_ue is not None else papp_config(self.checkpoint).num_ue

    def build_model(self) -> PaPP:
        """A trainable copy of the pretrained checkpoint."""
        base = load_papp(self.checkpoint)
        model = PaPP(base.cfg)
        model.load_state_dict(base.state_dict())
        return model

    def batch(self, step: int) -> torch.Tensor:
        """SNR-scaled samples ``[batch_size, num_ue, N]`` from the local positions at one grid SNR, users
        shuffled (and phase-rotated), deterministic in ``step``."""
        rng = np.random.default_rng([self.seed, step, 29])
        snr = self.snr_grid_db[int(rng.integers(len(self.snr_grid_db)))]
        h = draw_samples(self.local, self.batch_size, self.users(), int(rng.integers(2**62)), snr)
        h, _ = permute_users(h, int(rng.integers(2**62)))  # user-permutation augmentation
        return rotate_user_phases(h, int(rng.integers(2**62))) if self.phase_augment else h

    def loss(self, model: PaPP, h: torch.Tensor, step: int):
        """``h`` ``[B, K, N]`` -> (minus the student's sum rate over RZF's on the batch, metrics in
        bit/s/Hz)."""
        model.eval()  # batch-norm statistics (and dropout) as pretrained; gradients still flow
        r = user_rates(h, model(h)).sum(-1).mean()
        ref = user_rates(h, rzf(h)).sum(-1).mean()
        return -r / ref, {"sum_rate": float(r.detach()), "ratio_to_rzf": float(r.detach() / ref)}

    def evaluate(self, model: PaPP) -> dict[str, float]:
        """Mean sum rate (bit/s/Hz) and ratio to RZF on a fixed draw of the local positions per grid SNR."""
        return rzf_ratio_report(model, [self.local], self.snr_grid_db, self.users())


def finetune_papp(
    cs,
    shots: str | int,
    *,
    checkpoint: str | None = None,
    num_ue: int | None = None,
    steps: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str = "runs/adapt-papp",
    progress: bool = True,
    phase_augment: bool = True,
    fresh: bool = False,
    log=print,
    snr_grid_db: list[float] | None = None,
    eval_samples: int = 64,
) -> dict:
    """Fine-tune papp on ``shots`` local train-split positions of the site ``cs`` (or all: ``"full"``) for
    ``num_ue`` users (None: the checkpoint's) on the file's antennas; a file without a position split gets
    one (:func:`~mimofm.adaptation.common.site_split`); a run already in ``out_dir`` is resumed unless
    ``fresh``. Returns the shared loop's result dict plus ``split`` and ``report`` (``zero-shot`` /
    ``adapted``: ``ratio_to_wmmse`` on held-out local positions), also written to
    ``<out_dir>/adaptation.json``."""
    base = load_papp(checkpoint)
    k = base.cfg.num_ue if num_ue is None else int(num_ue)
    n = cs.num_bs_ant
    check_configuration("papp", base.cfg, k, n)
    grid = [float(s) for s in (snr_grid_db or DEFAULT_SNR_GRID_DB)]
    split = site_split(cs, out_dir, seed, fresh=fresh, log=log)
    idx, label = local_indices(split.codes, shots, k, seed)
    local = local_dataset(cs.h[torch.from_numpy(idx)], f"{cs.name}/{label}", median_gain(cs.h))
    held = held_out(cs, split.codes, idx, k, grid, eval_samples, seed)
    log(f"report on {held.num_positions} held-out positions ({held.which}), {eval_samples} samples per SNR")
    before = {"ratio_to_wmmse": held.ratio_to_wmmse(base)}
    rec = PaPPFineTune(
        checkpoint=checkpoint,
        local=local,
        local_name=local.name,
        snr_grid_db=grid,
        num_ue=k,
        seed=seed,
        phase_augment=phase_augment,
    )
    out = train(
        rec,
        adaptation_config(steps, lr, out_dir, seed),
        resume=not fresh,
        progress=progress,
    )
    report = {"zero-shot": before, "adapted": {"ratio_to_wmmse": held.ratio_to_wmmse(out["model"])}}
    return finish_run(out, out_dir, "papp", cs, shots, split, held, report, num_ue=k, num_bs_ant=n)
