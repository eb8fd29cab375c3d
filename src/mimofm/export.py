"""ONNX export of the neural precoders, and the small exact step that turns the graph's outputs into ``W``.

papp's graph is its deployed path (extractor + student) from ``h_re``, ``h_im`` to its structure
parameters ``lam``, ``p``; ``W`` is formed the same way, at full power. The hybrid student's graph adds
``lam_a`` (its analog beams' parameter); the analog phases and the digital stage are formed outside the
graph too (:func:`mimofm.precoders.structured.hybrid_structure`: a Cholesky factor and two triangular solves,
which ONNX has no operators for).

fm's ONNX graph is the whole network — tokens from the channel, the transformer, one head — with real
inputs and outputs (ONNX has no complex type). Two forms (``output=`` of :func:`export_fm_onnx`):

* ``"W"`` (default; :class:`FMPrecoderGraph`, :class:`FMUserPrecoderGraph`): the precoder itself in the
  maximum-sum-rate mode. Inputs ``h_re``, ``h_im`` ``[B, K, N]`` float32 (SNR-scaled channel; the user form
  also takes its features ``uf``, ``pf``); outputs ``W_re``, ``W_im`` ``[B, N, K]`` float32, ``‖W‖_F = 1``,
  every antenna on. The ``K × K`` solve ``V = H^H (I + Λ H H^H)^{-1}`` runs in the graph on the real
  ``2K × 2K`` embedding of the complex system, through ONNX Runtime's ``com.microsoft::Inverse`` contrib
  operator (CPU and CUDA providers; standard ONNX has no matrix inverse), in float32.
* ``"factors"`` (:class:`FMGraph`, :class:`FMUserGraph`): inputs ``h_re``, ``h_im`` (user form: ``uf``,
  ``pf``, ``af``) and ``rates`` ``[B, K]`` float32 per-user requests in bit/s/Hz (``1e3`` for "maximum
  sum rate"); outputs ``lam``, ``p`` ``[B, K]`` (the optimal-structure parameters), ``omega`` ``[B, N]``
  (0/1 antenna mask), ``gamma`` ``[B]`` (power scale). :func:`fm_precoder_from_outputs` forms ``W`` from
  them in float64 outside the graph, including the rate-target mode's exact power layer and antenna
  switch-off (iterative, data-dependent: not in the graph). Rate requests need this form.

The batch axis is dynamic; a user-form graph also has dynamic users and antennas.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mimofm._io import atomic_path
from mimofm.core.energy import normalize_power
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMPrecoder
from mimofm.models.layers import MoEFFN, user_tokens_real
from mimofm.models.userspace import GramView, antenna_features, pair_features, user_features
from mimofm.precoders.structured import exact_rates_or_keep, hybrid_structure, structured_precoder_real

__all__ = [
    "FMGraph",
    "FMPrecoderGraph",
    "FMUserGraph",
    "FMUserPrecoderGraph",
    "PaPPGraph",
    "PaPPUserGraph",
    "WiFoEBSGraph",
    "WiFoEUserGraph",
    "export_fm_onnx",
    "export_papp_onnx",
    "export_wifoe_onnx",
    "fm_precoder_from_outputs",
    "ort_session",
    "run_onnx",
    "run_wifoe_onnx",
    "user_form_feeds",
    "wifoe_onnx_sessions",
]


class FMGraph(nn.Module):
    """fm (one head) with real inputs/outputs, for export: ``(h_re, h_im, rates) -> (λ, p, Ω, γ)``."""

    def __init__(self, model: FMPrecoder, head: int | None = None):
        super().__init__()
        if model.cfg.head_form != "structure":
            raise MimofmInputError(
                f"ONNX export needs head_form='structure', this checkpoint has {model.cfg.head_form!r}"
            )
        self.extractor = model.extractor
        self.head = model.heads[model.default_head if head is None else head]

    def forward(self, h_re: torch.Tensor, h_im: torch.Tensor, rates: torch.Tensor):
        """``h_re``, ``h_im`` ``[B, K, N]``, ``rates`` ``[B, K]`` bit/s/Hz -> ``λ``, ``p`` ``[B, K]``,
        ``Ω`` ``[B, N]``, ``γ`` ``[B]``."""
        feats = self.extractor.from_tokens(user_tokens_real(h_re, h_im), torch.log1p(rates))
        lam, p = self.head.structure(feats)
        omega, gamma = self.head.mask_and_power(feats)
        return lam, p, omega, gamma


class FMUserGraph(nn.Module):
    """A user-form fm (one head) for export: user-space features -> ``(λ, p, Ω, γ)``; every axis but the
    feature axes is dynamic (batch, users, antennas)."""

    def __init__(self, model: FMPrecoder, head: int | None = None):
        super().__init__()
        self.extractor = model.extractor
        self.head = model.heads[model.default_head if head is None else head]

    def forward(self, uf: torch.Tensor, pf: torch.Tensor, af: torch.Tensor, rates: torch.Tensor):
        """``uf`` ``[B, K, F_U]``, ``pf`` ``[B, K, K, F_P]``, ``af`` ``[B, N, F_A]`` (user-space features),
        ``rates`` ``[B, K]`` bit/s/Hz -> ``λ``, ``p`` ``[B, K]``, ``Ω`` ``[B, N]``, ``γ`` ``[B]``."""
        feats = self.extractor.from_user_features(uf, pf, torch.log1p(rates))
        lam, p = self.head.structure(feats)
        omega, gamma = self.head.mask_and_power_from(feats, af)
        return lam, p, omega, gamma


MAX_SUM_RATE_REQUEST = 1e3  # bit/s/Hz: the "very large requests" of fm's maximum-sum-rate mode


def _full_power_w(head, feats: torch.Tensor, h_re: torch.Tensor, h_im: torch.Tensor):
    """The maximum-sum-rate precoder of ``head`` from the extractor's ``feats`` ``[B, K+1, d]`` and the
    channel ``h_re``, ``h_im`` ``[B, K, N]``: ``(W_re, W_im)`` ``[B, N, K]``, ``‖W‖_F = 1`` (``Σ p = 1``)."""
    lam, p = head.structure(feats)
    return structured_precoder_real(h_re, h_im, lam, p)


def _max_rate_log_requests(h_re: torch.Tensor) -> torch.Tensor:
    """``log1p`` of the maximum-sum-rate requests, ``[B, K]`` from ``h_re`` ``[B, K, N]``."""
    return torch.log1p(torch.full_like(h_re[..., 0], MAX_SUM_RATE_REQUEST))


class FMPrecoderGraph(nn.Module):
    """fm (one head) for export as the precoder itself, maximum-sum-rate mode:
    ``(h_re, h_im)`` ``[B, K, N]`` -> ``(W_re, W_im)`` ``[B, N, K]``, ``‖W‖_F = 1``."""

    def __init__(self, model: FMPrecoder, head: int | None = None):
        super().__init__()
        self.factors = FMGraph(model, head)

    def forward(self, h_re: torch.Tensor, h_im: torch.Tensor):
        """``h_re``, ``h_im`` ``[B, K, N]`` (SNR-scaled channel) -> ``W_re``, ``W_im`` ``[B, N, K]``."""
        tokens = user_tokens_real(h_re, h_im)
        feats = self.factors.extractor.from_tokens(tokens, _max_rate_log_requests(h_re))
        return _full_power_w(self.factors.head, feats, h_re, h_im)


class FMUserPrecoderGraph(nn.Module):
    """A user-form fm (one head) for export as the precoder itself, maximum-sum-rate mode:
    ``(uf, pf, h_re, h_im)`` -> ``(W_re, W_im)`` ``[B, N, K]``; batch, users and antennas dynamic."""

    def __init__(self, model: FMPrecoder, head: int | None = None):
        super().__init__()
        self.factors = FMUserGraph(model, head)

    def forward(self, uf: torch.Tensor, pf: torch.Tensor, h_re: torch.Tensor, h_im: torch.Tensor):
        """``uf`` ``[B, K, F_U]``, ``pf`` ``[B, K, K, F_P]`` (user-space features), ``h_re``, ``h_im``
        ``[B, K, N]`` -> ``W_re``, ``W_im`` ``[B, N, K]``."""
        feats = self.factors.extractor.from_user_features(uf, pf, _max_rate_log_requests(h_re))
        return _full_power_w(self.factors.head, feats, h_re, h_im)


class PaPPUserGraph(nn.Module):
    """A user-form papp's deployed path for export: ``(uf [B, K, F_U], pf [B, K, K, F_P]) -> (λ, p)``."""

    def __init__(self, model):
        super().__init__()
        self.extractor, self.student = model.extractor, model.student

    def forward(self, uf: torch.Tensor, pf: torch.Tensor):
        """User and pair features (:mod:`mimofm.models.userspace`) -> ``λ``, ``p`` ``[B, K]``."""
        feats, _ = self.extractor.from_features(uf, pf)
        return self.student.structure_from(torch.cat([feats, uf], dim=-1))  # [B, K, E + F_U]


def user_form_feeds(h: np.ndarray, antennas: bool) -> dict[str, np.ndarray]:
    """The inputs of a user-form graph from the channel ``h`` ``[B, K, N]``: ``uf``, ``pf`` and (fm,
    ``antennas``) ``af``, float32, computed in float64 from the Gram matrix as the PyTorch model does."""
    h_t = torch.from_numpy(np.asarray(h)).to(torch.complex128)
    view = GramView(h_t)
    feeds = {"uf": user_features(h_t, view).numpy(), "pf": pair_features(h_t, view).numpy()}
    if antennas:
        feeds["af"] = antenna_features(h_t, view).numpy()
    return feeds


def _user_form_args(k: int, n: int, inputs: str) -> tuple[tuple, tuple]:
    """Example inputs of a user-form graph and their dynamic axes (batch, users, antennas); ``inputs``:
    ``"papp"`` (uf, pf), ``"fm-factors"`` (uf, pf, af, rates) or ``"fm-W"`` (uf, pf, h_re, h_im)."""
    h = torch.randn(2, k, n, dtype=torch.complex128)
    view = GramView(h)
    args = (user_features(h, view), pair_features(h, view))
    batch, users = torch.export.Dim("batch"), torch.export.Dim("users", min=2, max=256)
    antennas = torch.export.Dim("antennas", min=2, max=65536)
    dyn: tuple = ({0: batch, 1: users}, {0: batch, 1: users, 2: users})
    if inputs == "fm-factors":
        args += (antenna_features(h, view), torch.ones(2, k))
        dyn += ({0: batch, 1: antennas}, {0: batch, 1: users})
    elif inputs == "fm-W":
        args += (h.real.float().contiguous(), h.imag.float().contiguous())
        dyn += ({0: batch, 1: users, 2: antennas}, {0: batch, 1: users, 2: antennas})
    return args, dyn


def _contrib_translations() -> dict:
    """The exporter's custom translations: ``aten.linalg_inv_ex`` -> ONNX Runtime's
    ``com.microsoft::Inverse`` (batched, float/double; standard ONNX has no matrix inverse)."""
    import onnx  # deferred: optional heavy dependencies, needed only when writing a file
    import onnxscript
    from onnxscript import opset18

    param = onnx.defs.OpSchema.FormalParameter
    schema = onnx.defs.OpSchema(
        "Inverse",
        "com.microsoft",
        1,
        inputs=[param("X", "T")],
        outputs=[param("Y", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(double)", "tensor(float16)"], "")],
    )
    inverse = onnxscript.values.Op(onnxscript.values.Opset("com.microsoft", 1), "Inverse", schema)

    def linalg_inv_ex(a):
        """``(A^{-1}, info = 0)``: the graph cannot report a singular matrix (ORT's kernel does not)."""
        return inverse(a), opset18.Constant(value_int=0)

    return {torch.ops.aten.linalg_inv_ex.default: linalg_inv_ex}


def _export(
    graph: nn.Module,
    args: tuple,
    inputs: list[str],
    outputs: list[str],
    path: str | Path,
    opset: int,
    meta: dict[str, str],
    dynamic: tuple | None = None,
) -> Path:
    """torch.export-based ONNX export with a dynamic batch axis on every input (or ``dynamic``), metadata
    in the file."""
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder kernel has no ONNX form
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # "torchvision is not installed" and similar notices
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", (UserWarning, FutureWarning, DeprecationWarning)
            )  # exporter chatter
            batch = torch.export.Dim("batch")
            dynamic = dynamic or tuple({0: batch} for _ in args)
            with atomic_path(Path(path)) as tmp:
                torch.onnx.export(
                    graph.eval(),
                    args,
                    str(tmp),
                    input_names=inputs,
                    output_names=outputs,
                    opset_version=opset,
                    dynamo=True,
                    dynamic_shapes=dynamic,
                    custom_translation_table=_contrib_translations(),
                    verbose=False,
                    external_data=False,
                )  # one self-contained file
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
        onnx_log.setLevel(level)
    import onnx  # deferred: optional heavy dependency, needed only when writing a file

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, meta)
    with atomic_path(Path(path)) as tmp:
        onnx.save(proto, str(tmp))
    return Path(path)


def export_fm_onnx(
    model: FMPrecoder, path: str | Path, *, head: int | None = None, opset: int = 18, output: str = "W"
) -> Path:
    """Write fm (default head unless ``head``) as an ONNX file with a dynamic batch axis.

    ``output="W"`` (default): the maximum-sum-rate precoder itself, inputs ``h_re``, ``h_im`` ``[B, K, N]``
    float32, outputs ``W_re``, ``W_im`` ``[B, N, K]`` (:class:`FMPrecoderGraph`; the user form also takes
    ``uf``, ``pf``: :class:`FMUserPrecoderGraph`); needs ONNX Runtime's ``com.microsoft`` operators.
    ``output="factors"``: inputs ``h_re``, ``h_im``, ``rates`` ``[B, K]`` bit/s/Hz, outputs ``(λ, p, Ω, γ)``
    (:class:`FMGraph`; user form: ``uf``, ``pf``, ``af``, ``rates``, :class:`FMUserGraph`), ``W`` formed by
    :func:`fm_precoder_from_outputs` — the form that serves rate requests. :func:`run_onnx` runs either
    (and computes a user form's features from ``h``); a user form has dynamic users and antennas too.
    """
    if output not in ("W", "factors"):
        raise MimofmInputError(f"`output` must be 'W' or 'factors', got {output!r}")
    k, n = model.cfg.num_ue, model.cfg.num_bs_ant
    meta = {
        "mimofm.family": "fm",
        "mimofm.output": output,
        "mimofm.rate_mode": model.cfg.rate_mode,
        "mimofm.input_form": model.cfg.input_form,
        "mimofm.num_ue": str(k),
        "mimofm.num_bs_ant": str(n),
        "mimofm.p_tx_w": repr(model.cfg.p_tx_w),
        "mimofm.p_rf_w": repr(model.cfg.p_rf_w),
    }
    user = model.cfg.input_form == "user"
    if output == "W":
        outputs = ["W_re", "W_im"]
        if user:
            args, dyn = _user_form_args(k, n, "fm-W")
            graph = FMUserPrecoderGraph(model, head)
            return _export(graph, args, ["uf", "pf", "h_re", "h_im"], outputs, path, opset, meta, dynamic=dyn)
        args = (torch.randn(2, k, n), torch.randn(2, k, n))
        return _export(FMPrecoderGraph(model, head), args, ["h_re", "h_im"], outputs, path, opset, meta)
    outputs = ["lam", "p", "omega", "gamma"]
    if user:
        args, dyn = _user_form_args(k, n, "fm-factors")
        graph = FMUserGraph(model, head)
        return _export(graph, args, ["uf", "pf", "af", "rates"], outputs, path, opset, meta, dynamic=dyn)
    args = (torch.randn(2, k, n), torch.randn(2, k, n), torch.ones(2, k))
    return _export(FMGraph(model, head), args, ["h_re", "h_im", "rates"], outputs, path, opset, meta)


class PaPPGraph(nn.Module):
    """papp's deployed path (extractor + student) for export: ``(h_re, h_im)`` ``[B, K, N]`` ->
    ``(λ, p)`` ``[B, K]`` each (hybrid: ``(λ_d, p, λ_a)``)."""

    def __init__(self, model):
        super().__init__()
        self.extractor, self.student = model.extractor, model.student

    def forward(self, h_re: torch.Tensor, h_im: torch.Tensor):
        """``h_re``, ``h_im`` ``[B, K, N]`` -> ``λ``, ``p`` ``[B, K]`` (hybrid: and ``λ_a`` ``[B, K]``)."""
        h = torch.complex(h_re, h_im)
        feats, _ = self.extractor(h)
        return self.student.structure(feats, h)


def export_papp_onnx(model, path: str | Path, *, opset: int = 18) -> Path:
    """Write papp's deployed path as an ONNX file with a dynamic batch axis (inputs ``h_re``, ``h_im``
    ``[B, K, N]``; outputs as :class:`PaPPGraph`)."""
    k, n, r = model.cfg.num_ue, model.cfg.num_bs_ant, model.cfg.num_rf
    meta = {"mimofm.family": "papp", "mimofm.num_ue": str(k), "mimofm.num_bs_ant": str(n)}
    meta["mimofm.input_form"] = model.cfg.input_form
    outputs = ["lam", "p"]
    if model.cfg.input_form == "user":
        args, dyn = _user_form_args(k, n, "papp")
        return _export(PaPPUserGraph(model), args, ["uf", "pf"], outputs, path, opset, meta, dynamic=dyn)
    if r is not None:
        meta["mimofm.num_rf"] = str(r)
        outputs.append("lam_a")
    return _export(
        PaPPGraph(model),
        (torch.randn(2, k, n), torch.randn(2, k, n)),
        ["h_re", "h_im"],
        outputs,
        path,
        opset,
        meta,
    )


class WiFoEUserGraph(nn.Module):
    """wifoe's user side of one task: received pilots ``(y_re, y_im)`` ``[B, K, L]`` -> bits ``q``
    ``[B, K, B]``."""

    def __init__(self, model, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, y_re: torch.Tensor, y_im: torch.Tensor):
        """``y_re``, ``y_im`` ``[B, K, L]`` -> ``q`` ``[B, K, B]`` in {±1}."""
        return self.model.feedback_real(y_re, y_im, self.task)


class WiFoEBSGraph(nn.Module):
    """wifoe's BS side of one task: feedback ``q`` ``[B, K, B]`` -> ``(v_re, v_im)`` ``[B, N, K]``,
    ``‖V‖_F = 1``."""

    def __init__(self, model, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, q: torch.Tensor):
        """``q`` ``[B, K, B]`` -> ``v_re``, ``v_im`` ``[B, N, K]``."""
        return self.model.decode_real(q, self.task)


def export_wifoe_onnx(model, task: str, out_stem: str | Path, *, opset: int = 18) -> dict[str, Path]:
    """Write one task of a wifoe model for deployment: ``<stem>-user.onnx`` (the UE's encoder),
    ``<stem>-bs.onnx`` (the BS precoder: input layer, trunk, output layer) and ``<stem>-pilots.npy``
    (``X`` complex64 ``[N_t, L]`` with unit-norm columns, the BS's pilot transmissions: sent with energy
    ``E_s`` per column, :class:`~mimofm.core.linkbudget.FDDOperatingPoint`). Batch and user axes are
    dynamic; the MoE runs every expert and gates with zeros in the graph (same output, no data-dependent
    shapes)."""
    if model.cfg.feedback != "bits":
        raise MimofmInputError("export is for the B-bit feedback model (not the CEP baseline)")
    br = model.branch(task)
    sh = br.shape
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "mimofm.family": "wifoe",
        "mimofm.task": task,
        "mimofm.num_bs_ant": str(sh.num_bs_ant),
        "mimofm.pilot_length": str(sh.pilot_length),
        "mimofm.feedback_bits": str(sh.feedback_bits),
    }
    moes = [m for m in model.modules() if isinstance(m, MoEFFN)]
    for m in moes:
        m.dense_dispatch = True
    try:
        with torch.no_grad():
            pilots = br.pilots().numpy().astype(np.complex64)
        paths = {
            "user": stem.with_name(stem.name + "-user.onnx"),
            "bs": stem.with_name(stem.name + "-bs.onnx"),
            "pilots": stem.with_name(stem.name + "-pilots.npy"),
        }
        with atomic_path(paths["pilots"]) as tmp, open(tmp, "wb") as f:
            np.save(f, pilots)
        y_re, y_im = torch.randn(2, 2, 4, sh.pilot_length)  # two distinct tensors (one would be aliased)
        _export_dyn(
            WiFoEUserGraph(model, task),
            (y_re.contiguous(), y_im.contiguous()),
            ["y_re", "y_im"],
            ["q"],
            paths["user"],
            opset,
            meta,
        )
        _export_dyn(
            WiFoEBSGraph(model, task),
            (torch.ones(2, 4, sh.feedback_bits),),
            ["q"],
            ["v_re", "v_im"],
            paths["bs"],
            opset,
            meta,
        )
    finally:
        for m in moes:
            m.dense_dispatch = False
    return paths


def _export_dyn(graph, args, inputs, outputs, path, opset, meta) -> Path:
    """:func:`_export` with dynamic batch and user axes (axes 0 and 1 of every input)."""
    batch, users = torch.export.Dim("batch"), torch.export.Dim("users", min=1, max=64)
    return _export(
        graph, args, inputs, outputs, path, opset, meta, dynamic=tuple({0: batch, 1: users} for _ in args)
    )


def ort_session(path: str | Path, threads: int = 0):
    """An ONNX Runtime CPU session of ``path``; ``threads`` > 0 caps its intra-op threads (0: ORT's
    default)."""
    import onnxruntime as ort  # deferred: optional heavy dependency, needed only to run a graph

    opts = ort.SessionOptions()
    # idle ORT workers spin-wait by default: on a small machine they steal the cores of whatever runs next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def wifoe_onnx_sessions(stem: str | Path, threads: int = 0) -> tuple[np.ndarray, object, object]:
    """``(pilots [N_t, L] complex64, user session, BS session)`` of an exported wifoe task (create once,
    run many times)."""
    stem = Path(stem)
    x = np.load(stem.with_name(stem.name + "-pilots.npy"))
    return (
        x,
        ort_session(stem.with_name(stem.name + "-user.onnx"), threads),
        ort_session(stem.with_name(stem.name + "-bs.onnx"), threads),
    )


def run_wifoe_onnx(
    stem: str | Path, h: np.ndarray, noise: np.ndarray, *, sessions=None, pilot_energy: float = 1.0
) -> np.ndarray:
    """The exported pipeline end to end with ONNX Runtime: pilots of energy ``pilot_energy`` through ``h``
    ``[B, K, N]`` plus ``noise`` ``[B, K, L]``, the user graph, the BS graph -> ``V`` ``[B, N, K]`` complex.
    ``sessions``: from :func:`wifoe_onnx_sessions` (default: created for this call)."""
    if not (np.isfinite(pilot_energy) and pilot_energy > 0):
        raise MimofmInputError(f"`pilot_energy` must be positive and finite, got {pilot_energy!r}")
    x, user, bs = sessions or wifoe_onnx_sessions(stem)
    y = np.sqrt(pilot_energy) * (np.asarray(h) @ x) + noise
    (q,) = user.run(None, {"y_re": y.real.astype(np.float32), "y_im": y.imag.astype(np.float32)})
    v_re, v_im = bs.run(None, {"q": q})
    return v_re.astype(np.float64) + 1j * v_im.astype(np.float64)


def fm_precoder_from_outputs(
    h: np.ndarray,
    lam: np.ndarray,
    p: np.ndarray,
    omega: np.ndarray,
    gamma: np.ndarray,
    *,
    full_power: bool = False,
    rate_mode: str = "paper",
    rates: np.ndarray | None = None,
    energy_w: tuple[float, float] | None = None,
) -> np.ndarray:
    """``W`` ``[B, N, K]`` complex128 from the graph's outputs and the channel ``h`` ``[B, K, N]``.

    ``full_power=True`` is fm's maximum-sum-rate mode (every antenna on, ``γ = 1``), as
    :class:`~mimofm.models.fm.FMPrecoder` does when no requests are given. ``rate_mode`` (the model's,
    stored in the ONNX file's metadata as ``mimofm.rate_mode``): ``"per-user"`` scales ``λ`` by ``γ``
    outside the maximum-rate mode. ``rates`` (rate-target mode): the exact power layer of
    :func:`mimofm.precoders.structured.exact_rates_or_keep`, as the PyTorch model applies it, with the antenna
    switch-off for ``energy_w = (P_TX, P_RF)`` when given.
    """
    h = np.asarray(h, dtype=np.complex128)
    k = h.shape[-2]
    if rate_mode == "per-user" and not full_power:
        lam = lam * gamma[..., None]
    # I + Λ H H^H: [B, K, N] @ [B, N, K] -> [B, K, K]
    m = np.eye(k) + lam[..., :, None] * (h @ np.conj(np.swapaxes(h, -1, -2)))
    # H^H M^{-1}: [B, N, K] @ [B, K, K] -> [B, N, K]
    v = np.conj(np.swapaxes(h, -1, -2)) @ np.linalg.solve(m, np.broadcast_to(np.eye(k), m.shape))
    v = v / np.maximum(np.linalg.norm(v, axis=-2, keepdims=True), 1e-300) * np.sqrt(p)[..., None, :]
    if full_power:
        return v
    if rates is not None:
        w, _, _, _ = exact_rates_or_keep(
            torch.from_numpy(h),
            torch.from_numpy(v),
            torch.from_numpy(omega),
            torch.from_numpy(gamma),
            torch.from_numpy(np.asarray(rates, dtype=np.float64)),
            energy_w,
        )
        return w.numpy()
    v = v * omega[..., :, None]
    norm = np.sqrt(np.maximum((np.abs(v) ** 2).sum((-2, -1)), 1e-12))
    return v / norm[..., None, None] * np.sqrt(gamma)[..., None, None]


def run_onnx(path: str | Path, h: np.ndarray, rates: np.ndarray | None = None, *, session=None) -> np.ndarray:
    """Run an exported fm or papp with ONNX Runtime (CPU) and return ``W`` ``[B, N, K]`` complex.

    ``h`` ``[B, K, N]`` the SNR-scaled channel. ``rates``: fm's per-user requests ``[B, K]`` in bit/s/Hz
    (None: maximum sum rate; they need a graph exported with ``output="factors"``); papp has none.
    ``session``: an open ``onnxruntime.InferenceSession`` of ``path`` to reuse (timing loops). An fm
    ``W`` graph's result is its float32 output (complex64); the factor graphs' ``W`` is formed in float64
    (complex128).
    """
    import onnxruntime as ort  # deferred: optional heavy dependency, needed only to run a graph

    h = np.asarray(h)
    sess = session or ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    family = meta.get("mimofm.family", "fm")
    w_graph = family == "fm" and meta.get("mimofm.output", "factors") == "W"
    h_real = {"h_re": h.real.astype(np.float32), "h_im": h.imag.astype(np.float32)}
    if meta.get("mimofm.input_form", "antenna") == "user":
        feed = user_form_feeds(h, antennas=family == "fm" and not w_graph)
        if w_graph:
            feed |= h_real
    else:
        feed = h_real
    if family == "papp":
        if rates is not None:
            raise MimofmInputError("papp has no rate-target mode")
        out = [o.astype(np.float64) for o in sess.run(None, feed)]
        if "mimofm.num_rf" in meta:  # hybrid: A W_dp from (λ_d, p, λ_a), float64 outside the graph
            lam_d, p, lam_a = (torch.from_numpy(o) for o in out)
            a, wd = hybrid_structure(torch.from_numpy(h), lam_a, lam_d, p, int(meta["mimofm.num_rf"]))
            return normalize_power(a @ wd).numpy()
        return fm_precoder_from_outputs(h, out[0], out[1], None, None, full_power=True)
    if w_graph:
        if rates is not None:
            raise MimofmInputError(
                "this fm graph outputs W for the maximum-sum-rate mode; rate requests need the factorised "
                "graph (`mimofm export onnx --factorised`, `export_fm_onnx(..., output='factors')`)"
            )
        w_re, w_im = sess.run(None, feed)
        return (w_re + 1j * w_im).astype(np.complex64)
    full = rates is None
    feed["rates"] = (
        np.full(h.shape[:-1], MAX_SUM_RATE_REQUEST, dtype=np.float32)
        if full
        else np.asarray(rates, dtype=np.float32)
    )
    lam, p, omega, gamma = sess.run(None, feed)
    return fm_precoder_from_outputs(
        h,
        lam.astype(np.float64),
        p.astype(np.float64),
        omega.astype(np.float64),
        gamma.astype(np.float64),
        full_power=full,
        rate_mode=meta.get("mimofm.rate_mode", "paper"),
        rates=None if full else rates,
        energy_w=(float(meta.get("mimofm.p_tx_w", 20.0)), float(meta.get("mimofm.p_rf_w", 1.0))),
    )
