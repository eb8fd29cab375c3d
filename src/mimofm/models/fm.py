"""fm: the rate-conditioned transformer precoder with antenna selection and power scaling.

Architecture (fm paper, Fig. 1 and Table III): one token per user built from its CSI, one extra
token for the per-user rate requests ``R*``, a transformer encoder (the shared *feature extractor*),
and per-dataset *output heads*, each with two parallel layers: one maps every user's feature to its
precoding vector ``w_u``; the other maps the rate token's feature to ``N_T + 1`` sigmoid outputs — the
antenna on/off mask ``Ω`` (thresholded at 0.5 with a straight-through estimator) and the power scale
``γ``. The transmitted precoder is ``√γ · (Ω ⊙ W) / ‖Ω ⊙ W‖_F`` (total power exactly ``γ``).

Input: the SNR-scaled channel ``h`` ``[B, K, N]`` (unit noise). A user's token is
``[Re(h_u/‖h_u‖), Im(h_u/‖h_u‖), log10(‖h_u‖²)/10]``: the direction plus the user's SNR in bels, so one
model serves every link budget and SNR without the dynamic range of raw gains reaching the network
(the paper feeds raw ``[Re h_u, Im h_u]`` at one SNR; this is mimofm's change, documented).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from mimofm.core.validation import MimofmInputError
from mimofm.models.layers import BiasedEncoderLayer, mlp, user_tokens
from mimofm.models.userspace import F_A, F_P, F_U, GramView, antenna_features, pair_features, user_features
from mimofm.precoders.refine import refine_structure
from mimofm.precoders.structured import exact_rates_or_keep, rzf_directions, structured_precoder, transmit

__all__ = [
    "FMConfig",
    "FMFeatureExtractor",
    "FMHead",
    "FMOutput",
    "FMPrecoder",
    "fm_flops",
]


@dataclass
class FMConfig:
    """Sizes (Table III defaults: width 128, 2 heads, 4 layers, FFN 1024, dropout 0.05)."""

    num_bs_ant: int = 64
    num_ue: int = 4
    d_model: int = 128
    num_attention_heads: int = 2
    num_layers: int = 4
    ffn: int = 1024
    dropout: float = 0.05
    num_output_heads: int = 1
    head_form: str = "structure"  # "structure" (λ, p of the optimal beamforming structure) or "rzf-mix"
    rate_mode: str = (
        "paper"  # "paper" or "per-user" (requests also in user tokens, λ scaled by γ; docs/fm.md)
    )
    p_tx_w: float = 20.0  # the energy model (eq. 4) the rate-target mode saves energy for: P_TX and P_RF in W
    p_rf_w: float = 1.0
    # "antenna": tokens from the channel itself, one K and one N_t (num_ue, num_bs_ant); "user": tokens from
    # the Gram matrix (mimofm.models.userspace), any K <= N_t; num_ue/num_bs_ant are then only the
    # configuration the complexity accounting reports
    input_form: str = "antenna"
    pair_hidden: int = 32  # "user": width of the MLPs on pair features (attention bias) and antenna features

    def to_dict(self) -> dict:
        """The sizes as a plain dict (the checkpoint card's ``architecture``)."""
        return asdict(self)


@dataclass
class FMOutput:
    """``w`` ``[B, N, K]`` transmitted precoder, ``omega`` ``[B, N]`` (0/1 forward, sigmoid gradient),
    ``gamma`` ``[B]`` power scale, ``features`` ``[B, K+1, d]``; ``served`` ``[B]`` (rate-target mode with
    exact powers: how each sample was served, :func:`mimofm.precoders.structured.exact_rates_or_keep`)."""

    w: torch.Tensor
    omega: torch.Tensor
    gamma: torch.Tensor
    features: torch.Tensor
    served: torch.Tensor | None = None


def fm_flops(cfg: FMConfig, num_ue: int | None = None, num_bs_ant: int | None = None) -> float:
    """Analytic FLOPs (2 per multiply-add) of one fm forward pass for one sample (``[1, K, N]``):
    embeddings, the encoder's linear layers and attention products, one head; the ``K × K`` structure
    solve and norms excluded. User form: with the Gram matrix and the features (``8NK²`` for ``G`` and
    ``W₀``, ``O(K³)`` solves) and the pair/antenna MLPs; ``num_ue``/``num_bs_ant`` (default the config's)
    pick the configuration."""
    k = cfg.num_ue if num_ue is None else num_ue
    n = cfg.num_bs_ant if num_bs_ant is None else num_bs_ant
    d, t, hp = cfg.d_model, k + 1, cfg.pair_hidden
    layer = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * cfg.ffn
    per_user_rate = 2 * k * d if cfg.rate_mode == "per-user" else 0
    if cfg.input_form == "user":
        features = 8 * n * k * k + 3 * 8 * k**3 + 8 * n * k
        embed = 2 * k * (F_U * d + d * d) + 2 * k * d + per_user_rate + 2 * k * k * (F_P * hp + hp * 2)
        head = 2 * k * d * 2 + 2 * n * ((d + F_A) * hp + hp) + 2 * d
        return float(features + embed + cfg.num_layers * layer + head)
    embed = 2 * k * (2 * n + 1) * d + 2 * k * d + per_user_rate
    head = 2 * k * d * (2 if cfg.head_form == "structure" else 2 * k) + 2 * d * (n + 1)
    return float(embed + cfg.num_layers * layer + head)


class FMFeatureExtractor(nn.Module):
    """Tokens -> transformer encoder features ``[B, K+1, d]`` (last token: the rate requests).

    ``input_form="user"``: a user's token is an MLP of its :func:`~mimofm.models.userspace.user_features`,
    the rate token a learned vector plus the mean of the users' request embeddings, and every attention
    layer adds a per-head bias from the pair features ``[B, K, K, F_P]`` (zero on the rate token's row and
    column): a relational transformer over users that never sees ``N_t`` and pools over ``K``.
    """

    def __init__(self, cfg: FMConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.input_form not in ("antenna", "user"):
            raise MimofmInputError(f"`input_form` must be 'antenna' or 'user', got {cfg.input_form!r}")
        self.user_form = cfg.input_form == "user"
        if self.user_form:
            self.csi_embed = mlp([F_U, cfg.d_model, cfg.d_model])
            self.rate_embed = nn.Linear(1, cfg.d_model)  # per user, mean-pooled into the rate token
            self.rate_base = nn.Parameter(torch.zeros(cfg.d_model))
            self.pair_bias = mlp([F_P, cfg.pair_hidden, cfg.num_attention_heads])
        else:
            self.csi_embed = nn.Linear(2 * cfg.num_bs_ant + 1, cfg.d_model)
            self.rate_embed = nn.Linear(cfg.num_ue, cfg.d_model)
        if cfg.rate_mode not in ("paper", "per-user"):
            raise MimofmInputError(f"`rate_mode` must be 'paper' or 'per-user', got {cfg.rate_mode!r}")
        self.user_rate_embed = None
        if cfg.rate_mode == "per-user":  # zero-initialized: starts as the paper's extractor
            self.user_rate_embed = nn.Linear(1, cfg.d_model)
            nn.init.zeros_(self.user_rate_embed.weight)
            nn.init.zeros_(self.user_rate_embed.bias)
        if self.user_form:  # the same pre-LN layer, with a pair bias on the attention logits
            self.encoder = nn.ModuleList(
                BiasedEncoderLayer(cfg.d_model, cfg.num_attention_heads, cfg.ffn, cfg.dropout)
                for _ in range(cfg.num_layers)
            )
        else:
            layer = nn.TransformerEncoderLayer(
                cfg.d_model, cfg.num_attention_heads, cfg.ffn, cfg.dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, h: torch.Tensor, rates: torch.Tensor, view: GramView | None = None) -> torch.Tensor:
        """``h`` ``[B, K, N]`` SNR-scaled channel, ``rates`` ``[B, K]`` (``log1p`` of bit/s/Hz) ->
        ``[B, K+1, d]``. ``view``: the batch's :class:`GramView` when the caller has it (user form)."""
        if self.user_form:
            v = view or GramView(h)
            return self.from_user_features(user_features(h, v), pair_features(h, v), rates)
        return self.from_tokens(user_tokens(h), rates)

    def from_tokens(self, tokens: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``[B, K, 2N+1]``, ``rates`` ``[B, K]`` (already ``log1p``) -> ``[B, K+1, d]``."""
        users = self.csi_embed(tokens)  # [B, K, d]
        if self.user_rate_embed is not None:
            users = users + self.user_rate_embed(rates.float()[..., None])
        x = torch.cat([users, self.rate_embed(rates.float())[:, None, :]], dim=1)
        return self.norm(self.encoder(x))

    def from_user_features(self, uf: torch.Tensor, pf: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """User form: ``uf`` ``[B, K, F_U]``, ``pf`` ``[B, K, K, F_P]``, ``rates`` ``[B, K]`` (``log1p``)
        -> ``[B, K+1, d]``."""
        r = rates.float()[..., None]  # [B, K, 1]
        users = self.csi_embed(uf)  # [B, K, d]
        if self.user_rate_embed is not None:
            users = users + self.user_rate_embed(r)
        rate_tok = self.rate_base + self.rate_embed(r).mean(1)  # [B, d]
        x = torch.cat([users, rate_tok[:, None, :]], dim=1)  # [B, K+1, d]
        bias = self.pair_bias(pf).permute(0, 3, 1, 2)  # [B, K, K, H] -> [B, H, K, K]
        bias = nn.functional.pad(bias, (0, 1, 0, 1))  # the rate token's row and column: 0 -> [B, H, K+1, K+1]
        for layer in self.encoder:
            x = layer(x, bias)
        return self.norm(x)


class _STE(torch.autograd.Function):
    """Threshold at 0.5 forward; the sigmoid's gradient passes straight through."""

    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:
        return (p > 0.5).to(p.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class FMHead(nn.Module):
    """One output head: per-user precoding vectors, and the mask/power layer on the rate token.

    ``head_form="structure"`` (default): user ``u``'s feature gives two scalars, the logits of its virtual
    uplink power ``λ_u`` and of its downlink power share ``p_u`` (softmax over users, both sum to 1), and
    the precoder is :func:`~mimofm.precoders.structured.structured_precoder` — a ``2K``-parameter family
    that contains the sum-rate optimum at every SNR, including switching weak users off at low SNR.
    ``"rzf-mix"``: coefficients ``x_u ∈ C^K`` on the unit-norm RZF basis
    (:func:`~mimofm.precoders.structured.rzf_directions`), ``w_u = B x_u``. Both are mimofm's changes to
    the paper's head (which outputs ``w_u ∈ C^N`` directly) and both start at RZF with equal powers.
    """

    def __init__(self, cfg: FMConfig):
        super().__init__()
        if cfg.head_form not in ("structure", "rzf-mix"):
            raise MimofmInputError(f"`head_form` must be 'structure' or 'rzf-mix', got {cfg.head_form!r}")
        self.user_form = cfg.input_form == "user"
        if self.user_form and cfg.head_form != "structure":
            raise MimofmInputError(
                "`input_form='user'` needs `head_form='structure'` (rzf-mix has K² outputs)"
            )
        self.k = cfg.num_ue
        self.form = cfg.head_form
        self.lam_times_gamma = cfg.rate_mode == "per-user"
        self.w_out = nn.Linear(cfg.d_model, 2 if self.form == "structure" else 2 * cfg.num_ue)
        nn.init.normal_(self.w_out.weight, std=0.01)
        nn.init.zeros_(self.w_out.bias)
        if self.user_form:  # per antenna: the rate token's feature with the antenna's features -> on/off
            self.mask_out = mlp([cfg.d_model + F_A, cfg.pair_hidden, 1])
            self.gamma_out = nn.Linear(cfg.d_model, 1)
            nn.init.constant_(self.mask_out[-1].bias, 3.0)  # start with every antenna on and full power
            nn.init.constant_(self.gamma_out.bias, 3.0)
        else:
            self.mask_out = nn.Linear(cfg.d_model, cfg.num_bs_ant + 1)
            nn.init.constant_(self.mask_out.bias, 3.0)  # start with every antenna on and full power

    def precoder(
        self, feats: torch.Tensor, h: torch.Tensor, lam_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``feats`` ``[B, K+1, d]``, ``h`` ``[B, K, N]`` -> un-normalized ``W`` ``[B, N, K]``.

        ``lam_scale`` ``[B]`` multiplies ``λ`` (``rate_mode="per-user"``: ``Σλ = γ``, the total power, which
        is the structure of QoS power minimization's solution).
        """
        k = feats.shape[1] - 1
        if self.form == "structure":
            lam, p = self.structure(feats)
            return structured_precoder(h, lam if lam_scale is None else lam * lam_scale[:, None], p)
        y = self.w_out(feats[:, :k])  # [B, K, 2K]
        # [B, K(user u), K(basis j)] -> [B, K(basis j), K(user u)]
        x = torch.complex(y[..., :k], y[..., k:]).transpose(-2, -1)
        x = x + torch.eye(k, dtype=x.dtype, device=x.device)  # residual around RZF
        return rzf_directions(h) @ x.to(torch.complex64)

    def structure(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``head_form="structure"``: ``feats`` ``[B, K+1, d]`` -> (``λ`` ``[B, K]``, ``p`` ``[B, K]``),
        each summing to 1."""
        y = self.w_out(feats[:, :-1])  # [B, K, 2]
        return torch.softmax(y[..., 0], -1), torch.softmax(y[..., 1], -1)

    def mask_and_power(
        self, feats: torch.Tensor, h: torch.Tensor | None = None, view: GramView | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats`` ``[B, K+1, d]`` (and ``h`` ``[B, K, N]``, needed by the user form) -> (``Ω`` ``[B, N]``
        0/1 with the sigmoid's gradient, ``γ`` ``[B]``)."""
        rate_feat = feats[:, -1]  # [B, d]
        if not self.user_form:
            s = torch.sigmoid(self.mask_out(rate_feat))  # [B, N+1]
            return _STE.apply(s[:, :-1]), s[:, -1]
        if h is None:
            raise MimofmInputError("the user-form head needs the channel for its antenna mask")
        return self.mask_and_power_from(feats, antenna_features(h, view))

    def mask_and_power_from(self, feats: torch.Tensor, af: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """User form: ``feats`` ``[B, K+1, d]``, antenna features ``af`` ``[B, N, F_A]`` -> (``Ω`` ``[B, N]``,
        ``γ`` ``[B]``)."""
        rate_feat = feats[:, -1]  # [B, d]
        x = torch.cat([rate_feat[:, None, :].expand(-1, af.shape[1], -1), af], dim=-1)  # [B, N, d + F_A]
        s = torch.sigmoid(self.mask_out(x)[..., 0])  # [B, N]
        omega = _STE.apply(s)
        # the K most likely antennas stay on: K streams need K antennas, and with every antenna off the
        # precoder is 0, where no rate has a gradient (a mask that once switched everything off never
        # recovered in training); the straight-through gradient still reaches every antenna's logit
        keep = torch.zeros_like(s).scatter_(1, s.topk(feats.shape[1] - 1, dim=1).indices, 1.0)
        omega = omega + keep * (1.0 - omega).detach()
        return omega, torch.sigmoid(self.gamma_out(rate_feat)[:, 0])

    def forward(
        self, feats: torch.Tensor, h: torch.Tensor, *, full_power: bool = False, view: GramView | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``feats`` ``[B, K+1, d]``, ``h`` ``[B, K, N]`` -> (``W`` ``[B, N, K]``, ``Ω`` ``[B, N]``,
        ``γ`` ``[B]``)."""
        if full_power:
            ones = torch.ones(h.shape[0], h.shape[-1], device=h.device)
            return self.precoder(feats, h), ones, ones[:, 0]
        omega, gamma = self.mask_and_power(feats, h, view)
        return self.precoder(feats, h, gamma if self.lam_times_gamma else None), omega, gamma


class FMPrecoder(nn.Module):
    """Shared feature extractor + ``num_output_heads`` heads (the last one is the default head)."""

    def __init__(self, cfg: FMConfig):
        super().__init__()
        if cfg.num_output_heads < 1:
            raise MimofmInputError(f"`num_output_heads` must be >= 1, got {cfg.num_output_heads}")
        self.cfg = cfg
        self.extractor = FMFeatureExtractor(cfg)
        self.heads = nn.ModuleList(FMHead(cfg) for _ in range(cfg.num_output_heads))
        if cfg.input_form == "user":  # ψ_e of each head's training dataset, saved with the weights
            self.register_buffer("head_features", torch.zeros(cfg.num_output_heads, cfg.d_model))

    @torch.no_grad()
    def record_head_feature(self, head: int, feats: torch.Tensor, momentum: float = 0.98) -> None:
        """Fold a batch's mean extractor feature (``feats`` ``[B, K+1, d]``) into ``head_features[head]``, the
        running ``ψ_e = mean f_θ(H)`` of that head's training dataset (few-shot adaptation picks heads by
        the cosine of ``ψ``, so it needs no training data; user form only)."""
        psi = feats.detach().mean((0, 1)).to(self.head_features.dtype)
        row = self.head_features[head]
        self.head_features[head] = psi if bool((row == 0).all()) else momentum * row + (1 - momentum) * psi

    @property
    def default_head(self) -> int:
        """Index of the default output head (the last one)."""
        return self.cfg.num_output_heads - 1

    def check_input(self, h: torch.Tensor, rates: torch.Tensor | None) -> None:
        """Raise :class:`MimofmInputError` unless ``h`` is complex ``[B, K, N]`` of this checkpoint's sizes
        and ``rates`` (if given) is finite, ``>= 0`` (bit/s/Hz) and ``[B, K]``."""
        if not h.is_complex() or h.dim() != 3:
            raise MimofmInputError(
                f"fm expects a complex channel [batch, num_ue, num_bs_ant], got {h.dtype} {list(h.shape)}"
            )
        if self.cfg.input_form == "user":
            if not 1 <= h.shape[-2] <= h.shape[-1]:
                raise MimofmInputError(
                    f"fm serves 1 <= users <= antennas; the data has {h.shape[-2]} users × "
                    f"{h.shape[-1]} antennas"
                )
        elif h.shape[-1] != self.cfg.num_bs_ant or h.shape[-2] != self.cfg.num_ue:
            raise MimofmInputError(
                f"this fm checkpoint serves {self.cfg.num_ue} users × {self.cfg.num_bs_ant} antennas; "
                f"the data has {h.shape[-2]} users × {h.shape[-1]} antennas"
            )
        if rates is not None and (
            rates.shape != h.shape[:-1] or not bool(torch.isfinite(rates).all()) or bool((rates < 0).any())
        ):
            raise MimofmInputError(f"`rate_targets` must be finite, >= 0 and of shape {list(h.shape[:-1])}")

    def forward(
        self,
        h: torch.Tensor,
        rates: torch.Tensor | None = None,
        head: int | None = None,
        *,
        full_power: bool | None = None,
        exact_rates: bool = True,
        prune: bool = True,
        energy_w: tuple[float, float] | None = None,
        refine_steps: int = 0,
    ) -> FMOutput:
        """``h`` ``[B, K, N]`` SNR-scaled channel, ``rates`` ``[B, K]`` requests (None: maximum sum rate).

        ``exact_rates`` (rate-target mode only): keep the network's beams and antenna mask but replace its
        powers by the least powers that meet the requests exactly
        (:func:`~mimofm.precoders.structured.exact_rate_powers`), wherever those beams can within the power
        budget, and use the QoS power-minimizing beams where they cannot but other beams can
        (:func:`~mimofm.precoders.structured.exact_rates_or_keep`); ``gamma`` is then the power actually
        transmitted. ``prune`` (with ``exact_rates``): then
        switch further antennas off on those beams while the energy of eq. 4 falls
        (:func:`~mimofm.precoders.structured.prune_antennas`), for ``energy_w = (P_TX, P_RF)`` in W
        (default: the config's).
        ``refine_steps`` (maximum-sum-rate mode, structured head): that many sum-rate steps on the head's
        ``(λ, p)`` (:func:`mimofm.precoders.refine.refine_structure`; ``fm-refined`` in the registry).
        """
        if refine_steps and (rates is not None or full_power is False or self.cfg.head_form != "structure"):
            raise MimofmInputError(
                "sum-rate refinement needs the maximum-sum-rate mode (no rate targets) "
                "and the structured head"
            )
        if rates is None:
            rates = torch.full(h.shape[:-1], 1e3, device=h.device)  # "very large requests"
            full_power = True if full_power is None else full_power
        view = GramView(h) if self.cfg.input_form == "user" else None
        feats = self.extractor(h, torch.log1p(rates.float()), view)
        out_head = self.heads[self.default_head if head is None else head]
        if refine_steps:  # full power, every antenna on, as the head's full_power path
            w = structured_precoder(h, *refine_structure(h, *out_head.structure(feats), refine_steps))
            return FMOutput(
                w=w.to(h.dtype),
                omega=torch.ones(h.shape[0], h.shape[-1], device=h.device),
                gamma=torch.ones(h.shape[0], device=h.device),
                features=feats,
            )
        w_raw, omega, gamma = out_head(feats, h, full_power=bool(full_power), view=view)
        w, served = transmit(w_raw, omega, gamma), None
        if exact_rates and not full_power:
            ew = (energy_w or (self.cfg.p_tx_w, self.cfg.p_rf_w)) if prune else None
            w, omega, gamma, served = exact_rates_or_keep(h, w_raw, omega, gamma, rates, ew)
        return FMOutput(w=w.to(h.dtype), omega=omega, gamma=gamma, features=feats, served=served)
