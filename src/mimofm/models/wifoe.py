"""wifoe: end-to-end FDD precoding with learned pilots, B-bit user feedback and a shared sparse
mixture-of-experts transformer trunk across configurations (wifoe paper, Sec. III, Fig. 1-2).

One **task** is a configuration ``(N_t, L, B)`` (and its channel scenario): it owns its *branch*
(:class:`TaskBranch`): pilots ``X ∈ C^{N_t×L}``, the user-side encoder (shared by the task's users),
the BS input projection ``B → d`` and output layer ``d → 2N_t``. The trunk (a stack of
:class:`~mimofm.models.layers.TransformerBlock`, MoE or dense FFN) is shared by every task.

Pipeline for one sample, SNR-scaled channel ``h`` ``[K, N_t]`` (row k: ``y_k = h[k] @ x``, unit noise,
``P = E_s = 1``):

1. Downlink training: ``y_k = √E_s · h_k X + z_k``, ``z_k ~ CN(0, I_L)``; every column of ``X`` has unit
   norm, so ``‖x_ℓ‖² = E_s`` (the per-symbol constraint, met with equality). ``E_s`` (``pilot_energy``,
   default ``P = 1``) sets the pilot SNR; :class:`~mimofm.core.linkbudget.FDDOperatingPoint` computes it
   from a stated pilot SNR.
2. User side: features ``[Re y/ρ, Im y/ρ, log10 ρ²]`` with ``ρ`` the RMS of ``y`` (an AGC: the encoder
   sees a normalized signal plus its received power; mimofm's choice, the paper feeds ``y``), an MLP
   (``encoder_layers`` layers, width ``encoder_width``, ReLU), then ``q = sign(tanh(·)) ∈ {±1}^B``
   with a straight-through gradient (the gradient of ``tanh``).
3. BS: one token per user ``q_k W_in + b_in``, the trunk (no positional encoding: permutation
   equivariant over users), ``d → 2N_t`` per user, ``V = √P · V_raw / ‖V_raw‖_F``.

Baselines reuse the same module: ``feedback="estimate"`` (CEP: the encoder outputs a channel
estimate that reaches the BS unquantized; the token is built from it) and ``decoder="mlp"`` (DSC:
no trunk, the BS is a per-task MLP on the concatenated feedback of ``max_ue`` users, zero-padded).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mimofm.channels.tr38901 import get_task
from mimofm.core.validation import MimofmInputError
from mimofm.models.layers import (
    DenseFFN,
    MoEFFN,
    RouterStats,
    TransformerBlock,
    ffn_flops_per_token,
    mlp,
)

__all__ = [
    "TaskBranch",
    "TaskShape",
    "TrunkRouting",
    "WiFoE",
    "WiFoEConfig",
    "parameter_counts",
    "sign_ste",
    "wifoe_flops",
]


@dataclass(frozen=True)
class TaskShape:
    """What a branch needs to know of a task: ``N_t``, pilot length ``L``, feedback bits ``B``."""

    name: str
    num_bs_ant: int
    pilot_length: int
    feedback_bits: int

    @classmethod
    def of(cls, task) -> TaskShape:
        """From a :class:`~mimofm.channels.tr38901.TaskConfig` or a catalog task name."""
        if isinstance(task, str):
            task = get_task(task)
        return cls(task.name, task.num_bs_ant, task.pilot_length, task.feedback_bits)


@dataclass
class WiFoEConfig:
    """Sizes. Defaults are the CPU scale; :meth:`paper` is the paper's (5 blocks, d 256, 8 heads,
    8 experts, top-3, user encoder 3 layers of width 128)."""

    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int = 128
    num_experts: int = 4
    top_k: int = 2
    moe: bool = True  # False: dense FFN of width d_ff in every block
    encoder_width: int = 128
    encoder_layers: int = 3
    dropout: float = 0.0
    decoder: str = "transformer"  # "transformer" or "mlp" (DSC baseline)
    feedback: str = "bits"  # "bits" or "estimate" (CEP baseline: unquantized channel estimate)
    max_ue: int = 8  # the mlp decoder's padding
    mlp_width: int = 512
    pre_ln: bool = False  # pre-LN trunk blocks and a final LayerNorm (the paper's blocks are post-LN)
    tasks: list = field(default_factory=list)  # TaskShape dicts, one branch each

    def __post_init__(self) -> None:
        if self.decoder not in ("transformer", "mlp"):
            raise MimofmInputError(f"`decoder` must be 'transformer' or 'mlp', got {self.decoder!r}")
        if self.feedback not in ("bits", "estimate"):
            raise MimofmInputError(f"`feedback` must be 'bits' or 'estimate', got {self.feedback!r}")
        if self.encoder_layers < 1:
            raise MimofmInputError(f"`encoder_layers` must be >= 1, got {self.encoder_layers}")
        self.tasks = [asdict(t) if isinstance(t, TaskShape) else dict(t) for t in self.tasks]

    @classmethod
    def paper(cls, **kw) -> WiFoEConfig:
        """The paper's sizes, with ``kw`` overriding any field."""
        return cls(
            **{
                **dict(
                    d_model=256,
                    num_layers=5,
                    num_heads=8,
                    d_ff=1024,
                    num_experts=8,
                    top_k=3,
                    encoder_width=128,
                    encoder_layers=3,
                    dropout=0.05,
                ),
                **kw,
            }
        )

    def to_dict(self) -> dict:
        """The sizes and task shapes as a plain dict (the checkpoint card's ``architecture``)."""
        return asdict(self)


@dataclass
class TrunkRouting:
    """Router statistics of the trunk's MoE layers in one BS pass (one :class:`RouterStats` per MoE
    block, in order; none for a dense or mlp decoder)."""

    layers: list[RouterStats]

    def aux_loss(self) -> torch.Tensor:
        """Mean load-balancing loss over the MoE layers ``[]`` (differentiable; 0 without MoE)."""
        losses = [s.aux_loss for s in self.layers]
        return torch.stack(losses).mean() if losses else torch.zeros(())

    def expert_load(self) -> torch.Tensor:
        """``[layers, experts]`` share of routed slots per expert."""
        return torch.stack([s.load for s in self.layers])


def sign_ste(u: torch.Tensor) -> torch.Tensor:
    """``sign(tanh(u)) ∈ {±1}`` forward (0 maps to +1), gradient of ``tanh`` backward; any shape, e.g.
    ``[B, K, B_bits]`` -> the same shape."""
    hard = 2.0 * (u >= 0).to(u.dtype) - 1.0
    if not torch.is_grad_enabled():  # inference (and the exported graph): the bits alone
        return hard
    t = torch.tanh(u)
    return t + (hard - t).detach()


def _agc(y_re: torch.Tensor, y_im: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``y`` as real and imaginary parts ``[..., L]`` -> (features ``[..., 2L+1]``, RMS ``[..., 1]``)."""
    rms = (y_re.square() + y_im.square()).mean(-1, keepdim=True).sqrt().clamp_min(1e-12)
    return torch.cat([y_re / rms, y_im / rms, torch.log10(rms.square())], -1), rms


class TaskBranch(nn.Module):
    """Task-specific parameters: pilots, user encoder, BS input projection and output layer."""

    def __init__(self, shape: TaskShape, cfg: WiFoEConfig) -> None:
        super().__init__()
        n, L, b = shape.num_bs_ant, shape.pilot_length, shape.feedback_bits
        self.shape = shape
        self.pilot_re_im = nn.Parameter(torch.randn(2, n, L))
        out = b if cfg.feedback == "bits" else 2 * n
        self.encoder = mlp([2 * L + 1] + [cfg.encoder_width] * (cfg.encoder_layers - 1) + [out], cfg.dropout)
        token_in = b if cfg.feedback == "bits" else 2 * n + 1
        if cfg.decoder == "transformer":
            self.inp = nn.Linear(token_in, cfg.d_model)
            self.out = nn.Linear(cfg.d_model, 2 * n)
        else:
            self.inp = mlp(
                [cfg.max_ue * token_in, cfg.mlp_width, cfg.mlp_width, cfg.max_ue * 2 * n], cfg.dropout
            )
            self.out = nn.Identity()

    def pilots(self) -> torch.Tensor:
        """``X`` complex ``[N_t, L]`` with every column of unit norm (``‖x_ℓ‖² = E_s = 1``)."""
        x = torch.complex(self.pilot_re_im[0], self.pilot_re_im[1])
        return x / x.norm(dim=0, keepdim=True).clamp_min(1e-12)


class WiFoE(nn.Module):
    """Multi-task end-to-end precoder: ``forward(h [B, K, N_t], task) -> V [B, N_t, K]`` (``‖V‖_F = 1``)."""

    def __init__(self, cfg: WiFoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if not cfg.tasks:
            raise MimofmInputError("a wifoe model needs at least one task")
        self.branches = nn.ModuleDict()
        for t in cfg.tasks:
            self._add_branch(TaskShape(**t))
        self.trunk = nn.ModuleList()
        if cfg.decoder == "transformer":
            for _ in range(cfg.num_layers):
                ffn = (
                    MoEFFN(cfg.d_model, cfg.d_ff, cfg.num_experts, cfg.top_k, cfg.dropout)
                    if cfg.moe
                    else DenseFFN(cfg.d_model, cfg.d_ff, cfg.dropout)
                )
                self.trunk.append(
                    TransformerBlock(cfg.d_model, cfg.num_heads, ffn, cfg.dropout, norm_first=cfg.pre_ln)
                )
            if cfg.pre_ln:
                self.trunk.append(nn.LayerNorm(cfg.d_model))

    # -- tasks ------------------------------------------------------------------------------
    def _add_branch(self, shape: TaskShape) -> TaskBranch:
        self.branches[shape.name] = TaskBranch(shape, self.cfg)
        return self.branches[shape.name]

    def add_task(self, shape: TaskShape) -> TaskBranch:
        """A new, randomly initialized branch (Algorithm 2); recorded in ``cfg.tasks``."""
        if shape.name in self.branches:
            raise MimofmInputError(f"task {shape.name!r} already has a branch")
        self.cfg.tasks.append(asdict(shape))
        return self._add_branch(shape)

    def branch(self, task: str) -> TaskBranch:
        """The branch of ``task``; a clear error if this model has none."""
        if task not in self.branches:
            raise MimofmInputError(
                f"this wifoe model has no branch for task {task!r}; it has "
                f"{', '.join(self.branches)} (fine-tune one with `mimofm adapt wifoe`)"
            )
        return self.branches[task]

    def freeze_trunk(self, keep_norms: bool = False) -> None:
        """Trunk weights fixed; ``keep_norms``: its LayerNorm scales and shifts stay trainable (``[d]`` each,
        2·d per norm)."""
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        if keep_norms:
            for m in self.trunk.modules():
                if isinstance(m, nn.LayerNorm):
                    for p in m.parameters():
                        p.requires_grad_(True)

    # -- pipeline ---------------------------------------------------------------------------
    def receive(
        self,
        h: torch.Tensor,
        task: str,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        pilot_energy: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """Received pilots ``y = √E_s · h X + z`` ``[B, K, L]`` (``noise`` given, or drawn CN(0, 1)).

        ``pilot_energy``: ``E_s = ‖x_ℓ‖²`` in units of the data power, a number or one per sample ``[B]``.
        """
        x = self.branch(task).pilots()
        if h.shape[-1] != x.shape[0]:
            raise MimofmInputError(
                f"task {task!r} has N_t = {x.shape[0]}, the channel has {h.shape[-1]} antennas"
            )
        amp = torch.as_tensor(pilot_energy, dtype=torch.float32, device=h.device)
        if not bool((amp > 0).all()) or not bool(torch.isfinite(amp).all()):
            raise MimofmInputError(f"`pilot_energy` must be positive and finite, got {pilot_energy!r}")
        # [B] -> [B, 1, 1] against y [B, K, L] (a scalar stays a scalar)
        amp = amp.sqrt().reshape(-1, 1, 1) if amp.dim() else amp.sqrt()
        y = (h.to(x.dtype) @ x) * amp
        if noise is None:
            re_im = torch.randn((2,) + y.shape, generator=generator, device=y.device) * 0.5**0.5
            noise = torch.complex(re_im[0], re_im[1])
        return y + noise

    def feedback(self, y: torch.Tensor, task: str) -> torch.Tensor:
        """User side: ``y`` ``[B, K, L]`` -> ``q`` ``[B, K, B]`` in {±1} (or the CEP token input)."""
        return self.feedback_real(y.real, y.imag, task)

    def feedback_real(self, y_re: torch.Tensor, y_im: torch.Tensor, task: str) -> torch.Tensor:
        """:meth:`feedback` on real and imaginary parts ``[B, K, L]`` each -> ``[B, K, B]`` (the exported
        user graph)."""
        feats, rms = _agc(y_re, y_im)
        u = self.branch(task).encoder(feats)
        if self.cfg.feedback == "bits":
            return sign_ste(u)
        return torch.cat([u, torch.log10(rms.square())], -1)  # CEP: estimate ĥ/ρ and ρ

    def estimate(self, y: torch.Tensor, task: str) -> torch.Tensor:
        """CEP only: the user's channel estimate ``ĥ`` ``[B, K, N_t]`` complex."""
        if self.cfg.feedback != "estimate":
            raise MimofmInputError("`estimate` needs feedback='estimate' (the CEP baseline)")
        feats, rms = _agc(y.real, y.imag)
        u = self.branch(task).encoder(feats)
        n = u.shape[-1] // 2
        return torch.complex(u[..., :n].float(), u[..., n:].float()) * rms  # float: bf16 under autocast

    def decode(self, q: torch.Tensor, task: str) -> torch.Tensor:
        """BS side: feedback ``[B, K, ·]`` -> ``V`` ``[B, N_t, K]`` with ``‖V‖_F = 1``."""
        return self.decode_with_routing(q, task)[0]

    def decode_with_routing(self, q: torch.Tensor, task: str) -> tuple[torch.Tensor, TrunkRouting]:
        """:meth:`decode` (``[B, K, ·]`` -> ``V`` ``[B, N_t, K]``) and the trunk's router statistics of this
        pass (for the load-balancing loss)."""
        v_re, v_im, routing = self._bs(q, task)
        return torch.complex(v_re.float(), v_im.float()), routing  # float: bf16 under autocast

    def decode_real(self, q: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` as real and imaginary parts ``[B, N_t, K]`` (the exported BS graph)."""
        v_re, v_im, _ = self._bs(q, task)
        return v_re, v_im

    def _bs(self, q: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor, TrunkRouting]:
        """Feedback ``[B, K, ·]`` -> ``(Re V, Im V)`` ``[B, N_t, K]`` each (``‖V‖_F = 1``) and the routing."""
        br = self.branch(task)
        bsz, k = q.shape[0], q.shape[1]
        n = br.shape.num_bs_ant
        stats: list[RouterStats] = []
        if self.cfg.decoder == "transformer":
            z = br.inp(q)
            for block in self.trunk:
                if isinstance(block, TransformerBlock):
                    z, s = block(z)
                    if s is not None:
                        stats.append(s)
                else:  # the pre-LN trunk's final LayerNorm
                    z = block(z)
            v = br.out(z)  # [B, K, 2N]
        else:
            if k > self.cfg.max_ue:
                raise MimofmInputError(
                    f"the mlp decoder serves at most max_ue = {self.cfg.max_ue} users, got {k}"
                )
            pad = torch.zeros(bsz, self.cfg.max_ue - k, q.shape[-1], dtype=q.dtype, device=q.device)
            # [B, max_ue, ·] -> [B, max_ue·(·)] -> MLP -> [B, max_ue·2N] -> [B, max_ue, 2N] -> first K users
            v = br.inp(torch.cat([q, pad], 1).flatten(1)).reshape(bsz, self.cfg.max_ue, 2 * n)[:, :k]
        # [B, K, 2N] -> [B, K·2N] -> ‖V‖_F [B, 1, 1]
        norm = v.square().flatten(1).sum(-1).sqrt().clamp_min(1e-12)[:, None, None]
        v = v / norm
        # [B, K, N] -> [B, N, K], real and imaginary parts
        return v[..., :n].transpose(-1, -2), v[..., n:].transpose(-1, -2), TrunkRouting(stats)

    def forward(
        self,
        h: torch.Tensor,
        task: str,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        pilot_energy: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """End to end: SNR-scaled ``h`` ``[B, K, N_t]`` -> ``V`` ``[B, N_t, K]`` (pilots and feedback
        included; ``pilot_energy`` as in :meth:`receive`)."""
        return self.forward_with_routing(h, task, noise, generator, pilot_energy)[0]

    def forward_with_routing(
        self,
        h: torch.Tensor,
        task: str,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        pilot_energy: float | torch.Tensor = 1.0,
    ) -> tuple[torch.Tensor, TrunkRouting]:
        """:meth:`forward` (``h`` ``[B, K, N_t]`` -> ``V`` ``[B, N_t, K]``) and the trunk's router statistics
        of this pass (for the load-balancing loss)."""
        if h.dim() != 3:
            raise MimofmInputError(f"`h` must be [batch, num_ue, num_bs_ant], got shape {tuple(h.shape)}")
        q = self.feedback(self.receive(h, task, noise, generator, pilot_energy), task)
        return self.decode_with_routing(q, task)


def parameter_counts(model: WiFoE) -> dict:
    """Parameter counts (numbers of scalars): ``trunk``, ``per_task`` {name: count}, ``total``."""
    trunk = sum(p.numel() for p in model.trunk.parameters())
    per = {name: sum(p.numel() for p in br.parameters()) for name, br in model.branches.items()}
    return {"trunk": trunk, "per_task": per, "total": trunk + sum(per.values())}


def wifoe_flops(cfg: WiFoEConfig, shape: TaskShape, num_ue: int) -> dict:
    """FLOPs (2 per multiply-add) of one sample: ``user`` (one user's encoder), ``bs`` (input,
    trunk with only the active experts, output), ``total = num_ue·user + bs``. Pilot transmission and
    the final normalization are not counted."""
    L, b, n, k, d = shape.pilot_length, shape.feedback_bits, shape.num_bs_ant, num_ue, cfg.d_model
    out = b if cfg.feedback == "bits" else 2 * n
    dims = [2 * L + 1] + [cfg.encoder_width] * (cfg.encoder_layers - 1) + [out]
    user = sum(2 * a * c for a, c in itertools.pairwise(dims))
    token_in = b if cfg.feedback == "bits" else 2 * n + 1
    if cfg.decoder == "mlp":
        m = cfg.max_ue
        bs = 2 * (m * token_in * cfg.mlp_width + cfg.mlp_width**2 + cfg.mlp_width * m * 2 * n)
    else:
        attn = 2 * (4 * k * d * d) + 2 * (2 * k * k * d)  # projections, scores and mixing
        ffn = k * (
            ffn_flops_per_token(d, cfg.d_ff, cfg.num_experts, cfg.top_k)
            if cfg.moe
            else ffn_flops_per_token(d, cfg.d_ff)
        )
        bs = 2 * k * token_in * d + cfg.num_layers * (attn + ffn) + 2 * k * d * 2 * n
    return {"user": user, "bs": bs, "total": k * user + bs}
