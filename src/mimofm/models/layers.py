"""Building blocks shared by mimofm's neural precoders: the channel tokens of fm and papp
(:func:`user_tokens`), a plain MLP (:func:`mlp`), and for the token models a sparse mixture-of-experts
feed-forward layer with top-k routing, its dense counterpart, and a post-LN transformer block.

Shapes: tokens are ``[B, T, d]`` (``T`` tokens per sample, e.g. one per user). No positional
encoding anywhere here, so a stack of :class:`TransformerBlock` is permutation equivariant over tokens
(a test checks it).

MoE (wifoe paper, eqs. 25-28; Shazeer et al. 2017): a linear router gives logits ``r_t`` ``[E]`` per
token, the ``k`` largest are kept and softmax-normalized among themselves (``π_t``), and the output is
``Σ_{i∈top-k} π_{t,i} E_i(z_t)`` with each expert a two-layer MLP. Only the selected experts run on a
token (tokens are gathered per expert). Every FFN here returns ``(y, stats)``; a MoE layer's
:class:`RouterStats` (a dense FFN's is ``None``) are returned, never stored on the module:
* ``aux_loss``: the Switch-Transformer load-balancing loss ``E · Σ_i f_i · P_i`` (``f_i`` share of
  routed slots that go to expert ``i``, ``P_i`` mean router probability of ``i``); 1 when balanced,
  up to ``E/k``-ish when collapsed; add ``α · aux_loss`` to the training loss;
* ``load``: ``f`` ``[E]``, the share of routed slots each expert received;
* ``topk``: ``[B·T, k]`` the experts each token was routed to.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from mimofm.core.validation import MimofmInputError

__all__ = [
    "BiasedEncoderLayer",
    "DenseFFN",
    "MoEFFN",
    "RouterStats",
    "TransformerBlock",
    "ffn_flops_per_token",
    "mlp",
    "user_tokens",
    "user_tokens_real",
]


def user_tokens(h: torch.Tensor) -> torch.Tensor:
    """One real token per user: ``h`` ``[B, K, N]`` complex -> ``[B, K, 2N + 1]`` float32.

    A user's token is ``[Re(h_u/‖h_u‖), Im(h_u/‖h_u‖), log10(‖h_u‖²)/10]``: the direction plus the user's
    SNR in bels (``h`` SNR-scaled, unit noise), so the dynamic range of raw gains never reaches a layer.
    """
    return user_tokens_real(h.real.float(), h.imag.float())


def user_tokens_real(h_re: torch.Tensor, h_im: torch.Tensor) -> torch.Tensor:
    """:func:`user_tokens` from the real and imaginary parts ``[B, K, N]`` -> ``[B, K, 2N + 1]`` (real
    ops only: exportable)."""
    g = (h_re.square() + h_im.square()).sum(-1, keepdim=True).clamp_min(1e-30)  # [B, K, 1]
    s = torch.rsqrt(g)
    return torch.cat([h_re * s, h_im * s, torch.log10(g) / 10.0], dim=-1)


def mlp(sizes: list[int], dropout: float = 0.0, last_act: bool = False) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]) → ReLU → Dropout → … → Linear(sizes[-2], sizes[-1])``:
    ``[..., sizes[0]]`` -> ``[..., sizes[-1]]``; ``last_act``: ReLU and dropout after the last layer too."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


@dataclass
class RouterStats:
    """Router statistics of one MoE forward pass over ``N = B·T`` tokens and ``E`` experts.

    ``aux_loss`` ``[]`` the load-balancing loss (differentiable), ``load`` ``[E]`` the share of routed
    slots each expert received (detached), ``topk`` ``[N, k]`` int64 the chosen experts (detached).
    """

    aux_loss: torch.Tensor
    load: torch.Tensor
    topk: torch.Tensor


class DenseFFN(nn.Module):
    """Position-wise ``Linear(d, d_ff) → GELU → dropout → Linear(d_ff, d)``: ``[B, T, d]`` ->
    ``([B, T, d], None)`` (no router, no statistics)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``z`` ``[B, T, d]`` -> (``[B, T, d]``, ``None``)."""
        return self.net(z), None


class MoEFFN(nn.Module):
    """Sparse mixture of ``num_experts`` two-layer MLPs, ``top_k`` per token: ``[B, T, d]`` ->
    ``([B, T, d], RouterStats)`` (the router statistics of this pass)."""

    def __init__(self, d_model: int, d_ff: int, num_experts: int, top_k: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise MimofmInputError(
                f"need 1 <= top_k <= num_experts, got top_k={top_k}, num_experts={num_experts}"
            )
        self.num_experts, self.top_k = num_experts, top_k
        self.router = nn.Linear(d_model, num_experts)
        self.w1 = nn.Parameter(torch.empty(num_experts, d_model, d_ff))
        self.b1 = nn.Parameter(torch.zeros(num_experts, d_ff))
        self.w2 = nn.Parameter(torch.empty(num_experts, d_ff, d_model))
        self.b2 = nn.Parameter(torch.zeros(num_experts, d_model))
        for w, fan_in in ((self.w1, d_model), (self.w2, d_ff)):
            nn.init.uniform_(w, -(fan_in**-0.5), fan_in**-0.5)  # nn.Linear's default range
        self.dropout = nn.Dropout(dropout)
        self.dense_dispatch = False  # True: every expert runs on every token (same output; for ONNX export)

    def _stats(self, counts: torch.Tensor, probs: torch.Tensor, top_idx: torch.Tensor) -> RouterStats:
        """``counts`` ``[E]`` routed slots per expert, ``probs`` ``[N, E]``, ``top_idx`` ``[N, k]``."""
        f = counts / counts.sum().clamp_min(1.0)
        aux = self.num_experts * (f * probs.mean(0)).sum()
        return RouterStats(aux_loss=aux, load=f.detach(), topk=top_idx.detach())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, RouterStats]:
        """``z`` ``[B, T, d]`` -> (``[B, T, d]``, :class:`RouterStats` of this pass)."""
        shape = z.shape
        # [B, T, d] -> [N, d], N = B·T
        x = z.reshape(-1, shape[-1])
        logits = self.router(x)  # [N, E]
        probs = logits.softmax(-1)
        top_val, top_idx = logits.topk(self.top_k, dim=-1)  # [N, k]
        gates = top_val.softmax(-1)  # π over the selected experts only (eq. 26)
        if self.dense_dispatch:  # no data-dependent shapes: gate matrix [N, E] with zeros off the top-k
            gate_full = torch.zeros_like(logits).scatter(1, top_idx, gates)
            # [N, d] x [E, d, d_ff] -> [E, N, d_ff]
            h = torch.nn.functional.gelu(torch.einsum("nd,edf->enf", x, self.w1) + self.b1[:, None])
            # [E, N, d_ff] x [E, d_ff, d] -> [E, N, d]
            y = torch.einsum("enf,efd->end", h, self.w2) + self.b2[:, None]
            counts = torch.zeros_like(logits).scatter(1, top_idx, 1.0).sum(0)  # [N, E] -> [E]
            # [N, E] x [E, N, d] -> [N, d] -> [B, T, d]
            out = torch.einsum("ne,end->nd", gate_full, y).reshape(shape)
            return out, self._stats(counts, probs, top_idx)
        out = torch.zeros_like(x)
        counts = torch.zeros(self.num_experts, device=x.device)
        for e in range(self.num_experts):
            tok, slot = (top_idx == e).nonzero(as_tuple=True)  # tokens routed to expert e
            counts[e] = tok.numel()
            if tok.numel() == 0:
                continue
            h = torch.nn.functional.gelu(x[tok] @ self.w1[e] + self.b1[e])
            y = self.dropout(h) @ self.w2[e] + self.b2[e]
            out.index_add_(0, tok, (y * gates[tok, slot, None]).to(out.dtype))  # bf16 under autocast
        stats = self._stats(counts, probs, top_idx)
        # [N, d] -> [B, T, d]
        return out.reshape(shape), stats


def ffn_flops_per_token(d_model: int, d_ff: int, num_experts: int = 1, top_k: int = 1) -> int:
    """FLOPs (multiply-adds ×2) of one token ``[d]`` through a (MoE) FFN: router + ``top_k`` experts."""
    router = 2 * d_model * num_experts if num_experts > 1 else 0
    return router + top_k * 2 * (2 * d_model * d_ff)


class TransformerBlock(nn.Module):
    """Post-LN block (wifoe eqs. 22, 25): ``Z̄ = LN(Z + MHA(Z))``, ``Z' = LN(Z̄ + FFN(Z̄))`` on
    ``[B, T, d]``; ``norm_first``: the pre-LN form ``Z̄ = Z + MHA(LN(Z))``, ``Z' = Z̄ + FFN(LN(Z̄))``
    (identity residual path). ``ffn``: a :class:`DenseFFN` or :class:`MoEFFN` (``z -> (y, stats)``)."""

    def __init__(
        self, d_model: int, num_heads: int, ffn: nn.Module, dropout: float = 0.0, norm_first: bool = False
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise MimofmInputError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.ffn = ffn
        self.drop = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, RouterStats | None]:
        """``z`` ``[B, T, d]`` -> (``[B, T, d]``, the FFN's :class:`RouterStats`; ``None`` for a dense
        FFN)."""
        if self.norm_first:
            x = self.norm1(z)
            z = z + self.drop(self.attn(x, x, x, need_weights=False)[0])
            y, stats = self.ffn(self.norm2(z))
            return z + self.drop(y), stats
        a, _ = self.attn(z, z, z, need_weights=False)
        z = self.norm1(z + self.drop(a))
        y, stats = self.ffn(z)
        return self.norm2(z + self.drop(y)), stats


class BiasedEncoderLayer(nn.Module):
    """Pre-LN encoder layer whose attention logits take an additive per-head bias (relational attention):
    ``Z̄ = Z + MHA(LN(Z); bias)``, ``Z' = Z̄ + FFN(LN(Z̄))`` on ``[B, T, d]``, ``bias`` ``[B, H, T, T]``.
    Written out with plain matmuls so that it exports to ONNX with every axis dynamic."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads:
            raise MimofmInputError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.h, self.dh = num_heads, d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.ffn = DenseFFN(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``z`` ``[B, T, d]``, ``bias`` ``[B, H, T, T]`` -> ``[B, T, d]``."""
        b, t, d = z.shape
        qkv = self.qkv(self.norm1(z)).reshape(b, t, 3, self.h, self.dh)  # [B, T, 3d] -> [B, T, 3, H, dh]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, dh]
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.dh) + bias, dim=-1)  # [B, H, T, T]
        a = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)  # [B, H, T, dh] -> [B, T, H·dh]
        z = z + self.drop(self.out(a))
        return z + self.drop(self.ffn(self.norm2(z))[0])
