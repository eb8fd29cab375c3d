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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mimofm.adaptation.common import adaptation_config, local_positions, rzf_ratio_report
from mimofm.channels.sampling import permute_users, rotate_user_phases
from mimofm.channels.site_data import draw_samples
from mimofm.channels.types import Dataset
from mimofm.core.rates import user_rates
from mimofm.models.papp import PaPP
from mimofm.models.zoo import load_papp
from mimofm.precoders.linear import rzf
from mimofm.training.trainer import train

__all__ = ["PaPPFineTune", "finetune_papp"]


@dataclass
class PaPPFineTune:
    """A recipe for the shared loop: fine-tune a pretrained papp on local samples."""

    checkpoint: str | None  # None: the shipped checkpoint
    local: Dataset | None = field(default=None, repr=False)
    local_name: str = ""
    snr_grid_db: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0, 30.0])
    batch_size: int = 64
    num_ue: int = 4  # the checkpoint's
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
        h = draw_samples(self.local, self.batch_size, self.num_ue, int(rng.integers(2**62)), snr)
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
        return rzf_ratio_report(model, [self.local], self.snr_grid_db, self.num_ue)


def finetune_papp(
    cs,
    shots: str | int,
    *,
    checkpoint: str | None = None,
    steps: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str = "runs/adapt-papp",
    progress: bool = True,
    phase_augment: bool = True,
    fresh: bool = False,
) -> dict:
    """Fine-tune papp on ``shots`` local train-split positions of the site ``cs`` (or all: ``"full"``);
    a run already in ``out_dir`` is resumed unless ``fresh``."""
    k = load_papp(checkpoint).cfg.num_ue
    local = local_positions(cs, shots, k, seed)
    rec = PaPPFineTune(
        checkpoint=checkpoint,
        local=local,
        local_name=local.name,
        num_ue=k,
        seed=seed,
        phase_augment=phase_augment,
    )
    return train(
        rec,
        adaptation_config(steps, lr, out_dir, seed),
        resume=not fresh,
        progress=progress,
    )
