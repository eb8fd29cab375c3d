"""papp: the plug-and-play teacher–student precoder (PaPP papers), fully digital and hybrid.

Input: the power-aware normalized channel ``H̄ = √P/σ · H`` ``[B, K, N]`` — mimofm's SNR-scaled channel,
so one model serves every transmit power and noise level; the transmitted precoder is ``√P · W̄``.

* **Shared feature extractor** (:class:`PaPPExtractor`): a CNN branch over the ``2 × K × N`` CSI image
  (3 conv layers, 8/8/2 channels, batch norm, ReLU) giving a global feature; per-user MLP encoders
  (shared weights, 5 layers) over each user's token; a permutation-invariant pooling across users
  (mean and the 0.25/0.5/0.75 quantiles); a gated merge that broadcasts the pooled context and the CNN
  feature back to every user. Dropout 0.15. Tokens are fm's (:func:`mimofm.models.layers.user_tokens`:
  direction plus SNR in bels), so the ray-traced channels' 70 dB gain spread never reaches a layer raw.
* **Teacher** (:class:`PaPPTeacher`, training only): per-user heads for the WMMSE receivers ``u`` and
  weights ``v`` and a head for the multiplier ``μ`` on the pooled context, then one WMMSE transmitter
  update, :func:`mimofm.precoders.wmmse.wmmse_precoder`. Each variable is a learned multiplicative
  correction of its closed form one WMMSE step after RZF (``u₀, v₀`` from :func:`wmmse_receivers` of
  RZF, ``μ₀ = Σ_k v_k |u_k|²``, the multiplier's value at a KKT point for unit power and noise), so an
  untrained teacher is exactly "RZF + one WMMSE step".
* **Student** (:class:`PaPPStudent`, deployed): compact fully connected layers (64, 64, 512; the
  paper's Table II) from the flattened features, the normalized Gram matrix ``Ĥ Ĥ^H`` and the users'
  SNRs to the precoder. Fully digital: the ``2K`` parameters ``(λ, p)`` of the optimal linear
  structure, :func:`mimofm.precoders.structured.structured_precoder` (``W = H^H (I + Λ H H^H)^{-1}`` with unit
  columns scaled by ``√p``; one ``K × K`` solve, no ``N``-dimensional inversion) — the teacher's WMMSE
  step has this form too, with ``λ = v|u|²/μ``; mimofm's change to the paper's direct ``N × K`` output.
  Hybrid (:func:`mimofm.precoders.structured.hybrid_structure`): analog phases ``A = e^{jθ}``
  ``[N, N_RF]`` (unit modulus by construction) and digital ``W_dp ∈ C^{N_RF×K}``, ``W̄ = A W_dp``, again
  from per-user parameters: the first ``K`` RF chains take the phases of the structured precoder with
  the student's ``λ_a``, extra chains the phases of the users' matched filters; the digital stage is the
  structured precoder with ``(λ_d, p)`` on the whitened effective channel (``A = Q Lᴴ`` from the
  Cholesky factor of ``AᴴA``), so ``‖A W_dp‖ = ‖W̃‖`` exactly and every sum-rate-optimal digital stage
  for that ``A`` is reachable.
  An untrained hybrid student is "phases of RZF + RZF on the effective channel". Outputs are
  normalized to unit power.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mimofm.core.energy import normalize_power, total_power
from mimofm.core.validation import MimofmInputError
from mimofm.models.layers import mlp, user_tokens
from mimofm.models.userspace import F_P, F_U, GramView, pair_features, user_features
from mimofm.precoders.hybrid import HybridPrecoder
from mimofm.precoders.linear import rzf
from mimofm.precoders.refine import refine_structure
from mimofm.precoders.structured import hybrid_structure, structured_precoder
from mimofm.precoders.wmmse import wmmse_precoder, wmmse_receivers

__all__ = [
    "PaPP",
    "PaPPConfig",
    "PaPPExtractor",
    "PaPPStudent",
    "PaPPTeacher",
    "papp_multiplications",
]

QUANTILES = (0.25, 0.5, 0.75)


@dataclass
class PaPPConfig:
    """Sizes (papers' Table II where given: CNN 8/8/2 channels, student FC 64/64/512, dropout 0.15)."""

    num_bs_ant: int = 64
    num_ue: int = 4
    cnn_channels: list[int] = field(default_factory=lambda: [8, 8, 2])
    kernel: int = 3
    encoder_layers: int = 5
    encoder_width: int = 128
    feature_dim: int = 64  # E: per-user feature size
    teacher_width: int = 128
    student_widths: list[int] = field(default_factory=lambda: [64, 64, 512])
    dropout: float = 0.15
    num_rf: int | None = None  # hybrid beamforming with this many RF chains (None: fully digital)
    correction_clamp: float | None = (
        None  # bound on the teacher's log-corrections (None: unbounded, as shipped)
    )
    # "antenna": the CSI image and tokens of one K × N_t (num_ue, num_bs_ant); "user": user-space features
    # (mimofm.models.userspace), any K <= N_t; num_ue/num_bs_ant only the configuration complexity reports
    input_form: str = "antenna"

    def to_dict(self) -> dict:
        """The sizes as a plain dict (the checkpoint card's ``architecture``)."""
        return asdict(self)

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` for inconsistent sizes."""
        if self.num_ue < 1 or self.num_bs_ant < self.num_ue:
            raise MimofmInputError(
                f"papp needs 1 <= num_ue <= num_bs_ant, got {self.num_ue}, {self.num_bs_ant}"
            )
        if self.num_rf is not None and not self.num_ue <= self.num_rf <= self.num_bs_ant:
            raise MimofmInputError(f"`num_rf` must be between num_ue and num_bs_ant, got {self.num_rf}")
        if self.encoder_layers < 1 or not self.cnn_channels or not self.student_widths:
            raise MimofmInputError("papp needs >= 1 encoder layer, CNN channels and student widths")
        if self.input_form not in ("antenna", "user"):
            raise MimofmInputError(f"`input_form` must be 'antenna' or 'user', got {self.input_form!r}")
        if self.input_form == "user" and self.num_rf is not None:
            raise MimofmInputError("the hybrid student serves one configuration: use `input_form='antenna'`")


class PaPPExtractor(nn.Module):
    """``h`` ``[B, K, N]`` -> per-user features ``[B, K, E]`` and the pooled context ``[B, E]``.

    ``input_form="user"``: the CNN runs over the ``F_P × K × K`` image of pair features
    (:func:`~mimofm.models.userspace.pair_features`, size-preserving convolutions), its map is pooled
    globally (the CNN feature) and along each user's row (mean and max, appended to that user's
    :func:`~mimofm.models.userspace.user_features` before the per-user encoder). Nothing depends on ``K``
    or ``N_t``.
    """

    def __init__(self, cfg: PaPPConfig):
        super().__init__()
        k, n, e = cfg.num_ue, cfg.num_bs_ant, cfg.feature_dim
        self.user_form = cfg.input_form == "user"
        convs: list[nn.Module] = []
        c_in = F_P if self.user_form else 2
        for c in cfg.cnn_channels:
            convs += [nn.Conv2d(c_in, c, cfg.kernel, padding=cfg.kernel // 2), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.cnn = nn.Sequential(*convs)
        self.cnn_out = nn.Linear(c_in if self.user_form else c_in * k * n, e)
        w = cfg.encoder_width
        token = F_U + 2 * c_in if self.user_form else 2 * n + 1
        self.encoder = mlp([token] + [w] * (cfg.encoder_layers - 1) + [e], cfg.dropout, last_act=True)
        self.pool_out = nn.Linear(len(QUANTILES) * e + e + e, e)  # mean, quantiles, CNN feature -> context
        self.gate = nn.Linear(2 * e, e)
        self.broadcast = nn.Linear(e, e)

    def forward(self, h: torch.Tensor, view: GramView | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``h`` ``[B, K, N]`` SNR-scaled channel -> (features ``[B, K, E]``, context ``[B, E]``)."""
        if self.user_form:
            v = view or GramView(h)
            return self.from_features(user_features(h, v), pair_features(h, v))
        tok = user_tokens(h)  # [B, K, 2N+1]
        n = h.shape[-1]
        # 2 × [B, K, N] -> [B, 2, K, N] (unit-norm directions as a 2-channel image)
        img = torch.stack([tok[..., :n], tok[..., n : 2 * n]], dim=1)
        # CNN: [B, 2, K, N] -> [B, C, K, N] -> flatten [B, C·K·N] -> [B, E]
        g = torch.relu(self.cnn_out(self.cnn(img).flatten(1)))
        return self.merge(self.encoder(tok), g)  # encoder: [B, K, E]

    def from_features(self, uf: torch.Tensor, pf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """User form: ``uf`` ``[B, K, F_U]``, ``pf`` ``[B, K, K, F_P]`` -> (features ``[B, K, E]``, context
        ``[B, E]``)."""
        # [B, K, K, F_P] -> [B, F_P, K, K] (contiguous: twice as fast in oneDNN) -> [B, C, K, K]
        fmap = self.cnn(pf.permute(0, 3, 1, 2).contiguous())
        g = torch.relu(self.cnn_out(fmap.mean((-2, -1))))  # [B, E]
        rows = torch.cat([fmap.mean(-1), fmap.amax(-1)], dim=1)  # [B, 2C, K]
        z = self.encoder(torch.cat([uf, rows.transpose(1, 2)], dim=-1))  # [B, K, F_U + 2C] -> [B, K, E]
        return self.merge(z, g)

    def merge(self, z: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool users (mean, quantiles) with the CNN feature into the context and merge it back through a
        gate: ``z`` ``[B, K, E]``, ``g`` ``[B, E]`` -> (features ``[B, K, E]``, context ``[B, E]``)."""
        q = torch.quantile(z, torch.tensor(QUANTILES, dtype=z.dtype, device=z.device), dim=1)  # [3, B, E]
        pooled = torch.cat([z.mean(1), *q.unbind(0), g], dim=-1)  # [B, 5E]
        ctx = torch.relu(self.pool_out(pooled))  # [B, E]
        c = ctx[:, None, :].expand_as(z)
        a = torch.sigmoid(self.gate(torch.cat([z, c], dim=-1)))
        return a * z + (1 - a) * self.broadcast(c), ctx  # [B, K, E], [B, E]


class PaPPTeacher(nn.Module):
    """Heads for ``u``, ``v``, ``μ`` (corrections of RZF + one WMMSE step) and the WMMSE update."""

    def __init__(self, cfg: PaPPConfig):
        super().__init__()
        e, w = cfg.feature_dim, cfg.teacher_width
        self.user_head = mlp([e, w, 3], 0.0)  # log|u| correction, phase of u, log v correction
        self.mu_head = mlp([e, w, 1], 0.0)
        self.correction_clamp = cfg.correction_clamp
        for head in (self.user_head, self.mu_head):
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    @staticmethod
    def start(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Closed-form ``(u₀, v₀, μ₀)`` from RZF: ``[B, K]`` complex, ``[B, K]``, ``[B]`` (float64)."""
        h64 = h.to(torch.complex128)
        u0, v0 = wmmse_receivers(h64 @ rzf(h64))
        return u0, v0, (v0 * u0.abs().square()).sum(-1)

    def variables(self, feats: torch.Tensor, ctx: torch.Tensor, h: torch.Tensor):
        """``(u, v, μ)`` for the batch: ``[B, K]`` complex128, ``[B, K]`` float64, ``[B]`` float64."""
        u0, v0, mu0 = self.start(h)
        y = self.user_head(feats).double()  # [B, K, 3]
        y_mu = self.mu_head(ctx).double()[:, 0]
        c = self.correction_clamp
        if c is not None:  # log-magnitude corrections bounded: e^±c (the phase y[..., 1] needs no bound)
            y = torch.stack([y[..., 0].clamp(-c, c), y[..., 1], y[..., 2].clamp(-c, c)], -1)
            y_mu = y_mu.clamp(-c, c)
        u = u0 * torch.exp(torch.complex(y[..., 0], y[..., 1]))
        v = 1.0 + (v0 - 1.0) * torch.exp(y[..., 2])  # v ≥ 1 (v = 1/MSE)
        mu = mu0 * torch.exp(y_mu)
        return u, v, mu

    def forward(self, feats: torch.Tensor, ctx: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One WMMSE transmitter update from the predicted variables, unit power: ``[B, N, K]``."""
        u, v, mu = self.variables(feats, ctx, h)
        return normalize_power(wmmse_precoder(h.to(torch.complex128), u, v, mu.clamp_min(1e-12))).to(h.dtype)


class PaPPStudent(nn.Module):
    """Compact FC layers (per user, shared weights) to a unit-power precoder, fully digital or hybrid."""

    def __init__(self, cfg: PaPPConfig):
        super().__init__()
        k, n = cfg.num_ue, cfg.num_bs_ant
        self.k, self.n, self.num_rf = k, n, cfg.num_rf
        self.user_form = cfg.input_form == "user"
        # its feature, Gram row and SNR (user form: its user features) -> logits of (λ_u, p_u), hybrid:
        # (λ_d,u, p_u, λ_a,u)
        extra = F_U if self.user_form else 2 * k + 1
        self.body = mlp([cfg.feature_dim + extra] + list(cfg.student_widths), 0.0, last_act=True)
        self.out = nn.Linear(cfg.student_widths[-1], 2 if cfg.num_rf is None else 3)
        nn.init.normal_(self.out.weight, std=1e-2)  # start near RZF with equal powers
        nn.init.zeros_(self.out.bias)

    def inputs(self, feats: torch.Tensor, h: torch.Tensor, view: GramView | None = None) -> torch.Tensor:
        """Student input per user ``[B, K, E + 2K + 1]``: features, the normalized Gram matrix ``Ĥ Ĥ^H``
        (row u for user u) and the users' SNRs in bels — the statistics the precoder's user-space
        coefficients depend on. User form: ``[B, K, E + F_U]``, the features and the user features."""
        if self.user_form:
            return torch.cat([feats, user_features(h, view)], dim=-1)  # [B, K, E + F_U]
        g = h.abs().square().sum(-1, keepdim=True).clamp_min(1e-30)  # [B, K, 1]
        hn = h / g.sqrt()  # Ĥ: unit-norm rows
        gram = hn @ hn.mH  # [B, K, K]
        return torch.cat([feats, gram.real.float(), gram.imag.float(), torch.log10(g).float() / 10.0], dim=-1)

    def structure(
        self, feats: torch.Tensor, h: torch.Tensor, view: GramView | None = None
    ) -> tuple[torch.Tensor, ...]:
        """``(λ, p)`` ``[B, K]`` each (hybrid: ``(λ_d, p, λ_a)``); λ free in scale (the teacher's
        ``λ = v|u|²/μ`` sums to 1 only at a KKT point), ``p`` power shares."""
        return self.structure_from(self.inputs(feats, h, view))

    def structure_from(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:meth:`structure` from the student's input ``x`` ``[B, K, ·]`` (:meth:`inputs`)."""
        y = self.out(self.body(x))  # [B, K, 2 | 3]
        k = x.shape[1]
        lam = [torch.exp(y[..., i].clamp(max=30.0)) / k for i in range(0, y.shape[-1], 2)]
        return lam[0], torch.softmax(y[..., 1], -1), *lam[1:]

    def forward(
        self,
        feats: torch.Tensor,
        h: torch.Tensor,
        num_rf: int | None = None,
        refine_steps: int = 0,
        view: GramView | None = None,
    ) -> torch.Tensor:
        """``feats`` ``[B, K, E]``, ``h`` ``[B, K, N]`` -> unit-power precoder ``[B, N, K]`` (``refine_steps``
        sum-rate steps on ``(λ, p)``, fully digital only; ``num_rf`` RF chains, hybrid only)."""
        if self.num_rf is None:
            lam, p = self.structure(feats, h, view)
            if refine_steps:
                lam, p = refine_structure(h, lam, p, refine_steps)
            return normalize_power(structured_precoder(h, lam, p).to(h.dtype))
        if refine_steps:
            raise MimofmInputError("sum-rate refinement is for the fully digital student (num_rf is None)")
        a, wd = self.hybrid(feats, h, num_rf)
        return normalize_power(a @ wd).to(h.dtype)

    def hybrid(
        self, feats: torch.Tensor, h: torch.Tensor, num_rf: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Analog ``A`` ``[B, N, N_RF]`` (unit modulus) and digital ``W_dp`` ``[B, N_RF, K]`` (complex128).
        ``num_rf``: serve another number of RF chains than trained with (``K ≤ num_rf ≤ N``): the student's
        per-user parameters do not depend on it."""
        r = self.num_rf if num_rf is None else num_rf
        if not self.k <= r <= self.n:
            raise MimofmInputError(
                f"`num_rf` must be between num_ue ({self.k}) and num_bs_ant ({self.n}), got {r}"
            )
        lam_d, p, lam_a = self.structure(feats, h)
        return hybrid_structure(h, lam_a, lam_d, p, r)


class PaPP(nn.Module):
    """Extractor + teacher + student; ``forward`` is the deployed path (extractor + student)."""

    def __init__(self, cfg: PaPPConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.extractor = PaPPExtractor(cfg)
        self.teacher = PaPPTeacher(cfg)
        self.student = PaPPStudent(cfg)

    def check_input(self, h: torch.Tensor) -> None:
        """Raise :class:`MimofmInputError` unless ``h`` is complex ``[B, K, N]`` of this checkpoint's
        sizes (user form: any ``1 <= K <= N``)."""
        if self.cfg.input_form == "user":
            if not h.is_complex() or h.dim() != 3 or not 1 <= h.shape[1] <= h.shape[2]:
                raise MimofmInputError(
                    "papp expects a complex channel [batch, num_ue, num_bs_ant] with 1 <= num_ue <= "
                    f"num_bs_ant; got a {h.dtype} tensor of shape {list(h.shape)}"
                )
            return
        if not h.is_complex() or h.dim() != 3 or tuple(h.shape[1:]) != (self.cfg.num_ue, self.cfg.num_bs_ant):
            raise MimofmInputError(
                f"this papp checkpoint serves {self.cfg.num_ue} users × {self.cfg.num_bs_ant} "
                f"antennas; got a {h.dtype} tensor of shape {list(h.shape)}"
            )

    def forward(
        self, h: torch.Tensor, with_teacher: bool = False, num_rf: int | None = None, refine_steps: int = 0
    ):
        """``h`` ``[B, K, N]`` SNR-scaled channel -> unit-power precoder ``[B, N, K]`` (student);
        ``with_teacher=True`` (training): ``(student, teacher)`` precoders from one feature pass.
        ``num_rf`` (hybrid students): RF chains to serve, default the trained number.
        ``refine_steps`` (fully digital): that many sum-rate steps on the student's ``(λ, p)``
        (:func:`mimofm.precoders.refine.refine_structure`; ``papp-refined`` in the registry)."""
        view = GramView(h) if self.cfg.input_form == "user" else None
        feats, ctx = self.extractor(h, view)
        w = self.student(feats, h, num_rf, refine_steps, view)
        return (w, self.teacher(feats, ctx, h)) if with_teacher else w

    def hybrid_precoder(self, h: torch.Tensor, num_rf: int | None = None) -> HybridPrecoder:
        """The hybrid student's two stages for a phase-shifter array: ``analog`` ``[B, N, N_RF]`` (unit
        modulus), ``digital`` ``[B, N_RF, K]`` scaled so that ``w = analog @ digital`` has unit power."""
        if self.cfg.num_rf is None:
            raise MimofmInputError("this papp checkpoint is fully digital (num_rf is None); use a hybrid one")
        self.check_input(h)
        feats, _ = self.extractor(h)
        a, wd = self.student.hybrid(feats, h, num_rf)
        w = a @ wd
        scale = total_power(w).sqrt()[..., None, None]
        return HybridPrecoder(
            w=(w / scale).to(h.dtype), analog=a.to(h.dtype), digital=(wd / scale).to(h.dtype)
        )

    def teacher_precoder(self, h: torch.Tensor) -> torch.Tensor:
        """The teacher's unit-power precoder ``[B, N, K]`` for ``h`` ``[B, K, N]`` (training diagnostics)."""
        feats, ctx = self.extractor(h)
        return self.teacher(feats, ctx, h)


def papp_multiplications(cfg: PaPPConfig, num_ue: int | None = None, num_bs_ant: int | None = None) -> float:
    """Real multiplications of the deployed path (extractor + student) for one sample (``[1, K, N]``);
    ``num_ue``/``num_bs_ant`` (default the config's) pick the configuration of a user-form model."""
    k = cfg.num_ue if num_ue is None else num_ue
    n = cfg.num_bs_ant if num_bs_ant is None else num_bs_ant
    e, w = cfg.feature_dim, cfg.encoder_width
    user = cfg.input_form == "user"
    pixels = k * k if user else k * n
    cnn, c_in = 0, F_P if user else 2
    for c in cfg.cnn_channels:
        cnn += c * c_in * cfg.kernel**2 * pixels
        c_in = c
    cnn += c_in * e if user else c_in * k * n * e
    enc_sizes = [F_U + 2 * c_in if user else 2 * n + 1] + [w] * (cfg.encoder_layers - 1) + [e]
    enc = k * sum(a * b for a, b in itertools.pairwise(enc_sizes))
    merge = (len(QUANTILES) + 2) * e * e + k * (2 * e * e + e * e + 2 * e)
    # per-user student: K times (E + 2K + 1) (user form: E + F_U) -> widths -> 2 (hybrid: 3)
    st_in = e + (F_U if user else 2 * k + 1)
    st_sizes = [st_in] + list(cfg.student_widths) + [2 if cfg.num_rf is None else 3]
    student = k * sum(a * b for a, b in itertools.pairwise(st_sizes))
    basis = (
        4 * n * k * k + 16 * k**3 // 3 + 4 * n * k * k + 4 * n * k
    )  # Gram (shared), K × K solve, H^H·M, norms
    if cfg.num_rf is not None:  # phases, AᴴA, Cholesky, Q, H Q, digital structure on it, L^{-H}, A·W_dp
        r = cfg.num_rf
        basis += (
            2 * n * r
            + 4 * n * r * r
            + 4 * r**3 // 3
            + 4 * n * r * r
            + 4 * k * n * r
            + 4 * r * k * k
            + 16 * k**3 // 3
            + 4 * r * k * k
            + 4 * r * k
            + 2 * r * r * k
            + 4 * n * r * k
        )
    # tokens; user form: the features' Gram matrix (shared with the basis), K × K solves, W₀ for nothing
    tokens = 4 * 4 * k**3 if user else 3 * k * n
    return float(cnn + enc + merge + student + basis + tokens + 4 * n * k)
