"""A few sum-rate steps on a structured precoder's ``2K`` parameters, in the user space.

fm's and papp's students output the parameters ``(λ, p)`` of the optimal linear-beamforming structure
(:func:`mimofm.precoders.structured.structured_precoder`). A network's ``(λ, p)`` is close to, not at, a
sum-rate optimum of the given channel; ``refine_structure`` takes ``steps`` Adam steps on
``(log λ, logits of p)`` to raise the sum rate of that very channel and keeps, per sample, the best
iterate (the start included), so the result is never worse than the start. Everything is done with ``K × K``
matrices — the Gram matrix ``G = H H^H`` is formed once (``K²N`` complex multiplications), then each
step costs ``O(K³)`` — so ten steps cost a few percent of the network that produced the start.

User-space rates: with ``M = I + Λ G``, ``V = H^H M^{-1}`` and ``W = V diag(√p / ‖v_k‖)``, the
effective channel is ``H W = G M^{-1} diag(√p / ‖v_k‖)`` and ``‖v_k‖² = (M^{-H} G M^{-1})_kk``; the
rates equal :func:`mimofm.core.rates.sum_rate` of the full precoder (tested).

Adam runs per sample (element-wise moments), so a sample's result does not depend on its batch.
"""

from __future__ import annotations

import math

import torch

from mimofm.core.rates import rates_from_hw
from mimofm.core.validation import MimofmInputError

__all__ = ["REFINE_LR", "REFINE_STEPS", "refine_multiplications", "refine_structure", "structure_rates"]

# Chosen on the validation sites munich-val and sf-val (benchmarks/structure_refine.py: the fewest steps
# within 0.1% of the best mean ratio to WMMSE), never on held-out data.
REFINE_STEPS = 20
REFINE_LR = 0.3


def structure_rates(gram: torch.Tensor, lam: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Per-user rates ``[B, K]`` in bit/s/Hz of ``structured_precoder(h, λ, p)`` from ``G = H H^H``
    ``[B, K, K]`` alone (``lam``, ``p`` ``[B, K]``; unit noise; total power ``Σ p``). Differentiable."""
    k = gram.shape[-1]
    eye = torch.eye(k, dtype=gram.dtype, device=gram.device).expand(gram.shape)
    minv = torch.linalg.solve(eye + lam.to(gram.real.dtype)[..., :, None] * gram, eye)  # M^{-1}  [B, K, K]
    # M^{-H} G M^{-1}  [B, K, K] -> its diagonal [B, K]
    norms = torch.diagonal(minv.mH @ gram @ minv, dim1=-2, dim2=-1).real.clamp_min(1e-300)  # ‖v_k‖²
    hw = gram @ minv * (p.to(norms.dtype) / norms).sqrt()[..., None, :]  # H W = G M^{-1} diag(√p / ‖v_k‖)
    return rates_from_hw(hw)


def refine_structure(
    h: torch.Tensor, lam: torch.Tensor, p: torch.Tensor, steps: int = REFINE_STEPS, lr: float = REFINE_LR
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Adam steps raising the sum rate of ``structured_precoder(h, λ, p)`` on the channel ``h``.

    ``h`` ``[B, K, N]`` SNR-scaled; ``lam``, ``p`` ``[B, K]`` (``λ > 0``, ``p`` power shares summing to 1)
    -> refined ``(λ, p)`` ``[B, K]`` float64, ``p`` still summing to 1: of the start and the ``steps``
    iterates, the one with the highest sum rate. Works under ``torch.no_grad``.
    """
    if steps < 0 or not (lr > 0 and math.isfinite(lr)):
        raise MimofmInputError(f"`steps` must be >= 0 and `lr` > 0, got {steps} and {lr}")
    lam, p = lam.detach().to(torch.float64), p.detach().to(torch.float64)
    if steps == 0:
        return lam, p
    h64 = h.detach().to(torch.complex128)
    gram = h64 @ h64.mH  # [B, K, K], once
    x = torch.cat([lam.clamp_min(1e-300).log(), p.clamp_min(1e-300).log()], -1)  # [B, 2K]
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    b1, b2, k = 0.9, 0.999, lam.shape[-1]

    def rates(z: torch.Tensor) -> torch.Tensor:  # [B] sum rate
        return structure_rates(gram, z[..., :k].exp(), torch.softmax(z[..., k:], -1)).sum(-1)

    best, best_rate = x, torch.full(x.shape[:-1], -math.inf, dtype=x.dtype, device=x.device)
    with torch.enable_grad():
        for t in range(1, steps + 1):
            xg = x.detach().requires_grad_(True)
            rate = rates(xg)
            (g,) = torch.autograd.grad(rate.sum(), xg)
            better = (
                torch.nan_to_num(rate.detach(), nan=-math.inf) > best_rate
            )  # keep each sample's best iterate
            best, best_rate = (
                torch.where(better[..., None], x, best),
                torch.where(better, rate.detach(), best_rate),
            )
            g = torch.nan_to_num(g)  # a sample whose rate saturates keeps its parameters
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g.square()
            x = x + lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + 1e-8)  # ascent
    better = torch.nan_to_num(rates(x), nan=-math.inf) > best_rate
    best = torch.where(better[..., None], x, best)
    return best[..., :k].exp(), torch.softmax(best[..., k:], -1)


def refine_multiplications(k: int, steps: int = REFINE_STEPS) -> float:
    """Real multiplications of ``steps`` refinement steps at ``K`` users for one sample (estimate, same
    conventions as :func:`mimofm.evaluation.complexity.mimofm_multiplications`): per step the forward
    pass — ``Λ G``, one complex ``K × K`` solve (``4·4/3 K³``), ``M^{-H} G M^{-1}`` and ``G M^{-1}``
    (three complex ``K³`` products), gains and SINRs — the backward pass taken as twice the forward, and
    Adam on ``2K`` numbers, plus one forward pass for the last iterate; the Gram matrix ``G`` (``4K²N``)
    is counted by the structure step it shares."""
    forward = 2 * k * k + 4 * 4 / 3 * k**3 + 3 * 4 * k**3 + 2 * k * k + k * k + 4 * k
    return float(steps * (3 * forward + 8 * 2 * k) + (forward if steps else 0))
