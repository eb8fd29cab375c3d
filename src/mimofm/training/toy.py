"""A toy recipe: a small MLP precoder trained on the sum rate of i.i.d. Rayleigh channels.

It exercises the shared loop end to end in seconds (tests, kill-and-resume checks) and uses the system
model from :mod:`mimofm.core` like every real recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from mimofm.core.energy import normalize_power
from mimofm.core.rates import sum_rate

__all__ = ["ToyPrecoder", "ToyRecipe"]


class ToyPrecoder(nn.Module):
    """``h`` ``[B, K, N]`` complex -> ``W`` ``[B, N, K]`` complex with ``‖W‖_F² = 1``."""

    def __init__(self, num_ue: int, num_bs_ant: int, width: int = 64):
        super().__init__()
        self.k, self.n = num_ue, num_bs_ant
        d = 2 * num_ue * num_bs_ant
        self.net = nn.Sequential(
            nn.Linear(d, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``[B, K, N]`` complex (SNR-scaled) -> ``W`` ``[B, N, K]`` complex, ``‖W‖_F² = 1``."""
        b = h.shape[0]
        # [B, K, N] complex -> [B, 2KN] real
        x = torch.view_as_real(h).reshape(b, -1)
        # [B, 2NK] -> [B, N, K, 2] (real, imaginary)
        y = self.net(x).reshape(b, self.n, self.k, 2)
        w = torch.view_as_complex(y.contiguous()) + h.mH  # MRT skip connection
        return normalize_power(w, 1.0)


@dataclass
class ToyRecipe:
    """A recipe for the toy precoder: i.i.d. Rayleigh channels ``[B, K, N]`` at ``snr_db`` (dB), negative sum
    rate as the loss; small enough to train in seconds (tests, examples)."""

    num_ue: int = 2
    num_bs_ant: int = 4
    snr_db: float = 10.0
    batch_size: int = 64
    seed: int = 0
    name: str = "toy"

    def config(self) -> dict:
        """The recipe's settings as a dict (saved in the checkpoint card)."""
        return asdict(self)

    def samples_per_step(self) -> int:
        """Multi-user samples per training step (the batch size)."""
        return self.batch_size

    def build_model(self) -> nn.Module:
        """A fresh :class:`ToyPrecoder` of this size."""
        return ToyPrecoder(self.num_ue, self.num_bs_ant)

    def _channels(self, seed: int, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        shape = (n, self.num_ue, self.num_bs_ant)
        h = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
        return h * (10 ** (self.snr_db / 20) / 2**0.5)

    def batch(self, step: int) -> torch.Tensor:
        """The seeded training batch ``[batch_size, K, N]`` of ``step``."""
        return self._channels(self.seed * 1_000_003 + step, self.batch_size)

    def loss(self, model: nn.Module, batch: torch.Tensor, step: int):
        """Negative mean sum rate (bit/s/Hz) of ``model`` on ``batch``, and the sum rate to log."""
        r = sum_rate(batch, model(batch)).mean()
        return -r, {"sum_rate": float(r.detach())}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Mean sum rate (bit/s/Hz) on a fixed evaluation set of 512 samples disjoint from training."""
        h = self._channels(-1 - self.seed, 512)  # a fixed evaluation set, disjoint seeds
        return {"sum_rate": float(sum_rate(h, model(h)).mean())}
