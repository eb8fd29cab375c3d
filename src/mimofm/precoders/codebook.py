"""5G NR downlink CSI codebooks (TS 38.214 Type I single-panel and Type II), rank 1, for mimofm's arrays.

This is the standard's limited-feedback baseline: the UE quantises its channel direction with a PMI
codebook and the BS rebuilds a channel from the report and feeds it to ZF / RZF / WMMSE.

Adaptation to mimofm
--------------------
mimofm's 3GPP tasks use **single-polarized** planar arrays of ``rows × cols`` elements (vertical ×
horizontal, λ/2 spacing) with antenna index ``i = col · rows + row``. The NR codebooks are written for
dual-polarized panels; here only their 2-D DFT beam part is used, with **no co-phasing term**
(TS 38.214 Sec. 5.2.2.2.1, the vectors ``v_{l,m}``; Sec. 5.2.2.2.3, the ``v_{m1,m2}`` of Type II):

* ``N1 = cols`` (horizontal), ``N2 = rows`` (vertical), oversampling ``O1 = 4`` and ``O2 = 4``
  (``O2 = 1`` when ``rows == 1``, ``O1 = 1`` when ``cols == 1``: oversampling a single element only
  repeats codewords).
* Grid beam ``(m1, m2)``, ``m1 ∈ [0, N1·O1)``, ``m2 ∈ [0, N2·O2)``, element ``(n1, n2)``:
  ``v[n1·N2 + n2] = exp(j2π(m1·n1/(N1·O1) + m2·n2/(N2·O2))) / √(N1·N2)``. The 3GPP element order
  ``n1·N2 + n2`` (horizontal index outer) is exactly mimofm's ``col · rows + row``.
  Column ``k = m1·(N2·O2) + m2`` of :func:`dft_beams` is beam ``(m1, m2)``.
* A codeword ``w`` is a **transmit** vector: a UE with channel row ``h`` (``y = h @ x``) receives
  ``|h @ w|²`` and picks the codeword that maximises it (the ideal beam is ``w ∝ conj(h)``). The BS
  turns the report back into a channel row ``ĥ = ĝ · conj(w)`` (``ĥ ∝ conj(w)`` up to a common
  phase, which no precoder needs), ``ĝ`` the CQI-quantised norm ``‖h‖``.

Type I (rank 1): one grid beam; the report is its index, a joint index over the whole grid of
``N1·O1·N2·O2`` codewords: ``bits = ⌈log2(N1·O1·N2·O2)⌉``.

Type II (rank 1, one polarization, wideband amplitude and phase): the report has four fields,

==========================  ==========================================  =============================
field                       what                                        bits
==========================  ==========================================  =============================
orthogonal group (q1, q2)   ``q1 ∈ [0, O1)``, ``q2 ∈ [0, O2)``            ``⌈log2(O1·O2)⌉``
beam set                    ``L`` of the group's ``N1·N2`` orthogonal     ``⌈log2 C(N1·N2, L)⌉``
                            beams ``m1 = O1·n1 + q1, m2 = O2·n2 + q2``
strongest beam              which of the ``L`` (its coefficient is 1)   ``⌈log2 L⌉``
other ``L − 1`` beams       amplitude (3 bits, set ``AMPLITUDES``) and  ``(L − 1)·(3 + log2 N_PSK)``
                            phase (``N_PSK ∈ {4, 8}``)
==========================  ==========================================  =============================

``bits = ⌈log2(O1·O2)⌉ + ⌈log2 C(N1·N2, L)⌉ + ⌈log2 L⌉ + (L − 1)·(3 + log2 N_PSK)``. Each field fits in
its own bit count, so their mixed-radix packing (:func:`type2_encode`) is an integer ``< 2**bits``.
Differences from NR, all stated: the payload has a fixed length (NR omits the phase of zero-amplitude
coefficients); the beam set is coded with the combinatorial number system
``Σ_i C(s_i, i + 1)`` over the sorted beams ``s_0 < … < s_{L−1}`` (NR uses an equivalent
combinatorial index); NR limits Type II to 32 ports and ``L ≤ 4``, here any array is allowed, so for
large arrays the beam-set field dominates the payload.

Type II selection (the UE side, :func:`type2_encode`): for every orthogonal group, project the
channel on the group's ``N1·N2`` orthonormal beams (``c_b = h @ v_b``; the ideal transmit vector
``conj(h)`` has coefficient ``conj(c_b)`` on beam ``b``), keep the ``L`` strongest, normalise their
coefficients to the strongest one (amplitude 1, phase 0) and quantise the others: amplitude to the
nearest value of ``AMPLITUDES`` in linear amplitude, phase to the nearest ``N_PSK`` point. The group
reported is the one whose **quantised** reconstruction correlates best with the channel
(``|h @ w| / ‖h‖``, what the report is for), not merely the one capturing most energy before
quantisation.

Budgets (:func:`fit_to_bits`): a per-user budget of ``B`` bits pays ``cqi_bits`` (default 4) for a
wideband gain value, :func:`quantize_gain_db` of ``10·log10‖h‖²`` (uniform in dB over a stated range),
and the rest for the PMI. Type I takes the richest oversampling that fits (most codewords; ties prefer
balanced, then horizontal oversampling); Type II the largest ``L ∈ {4, 3, 2}``, then the richest
oversampling, then ``N_PSK ∈ {8, 4}``, that fit. Type I without oversampling, ``⌈log2 N_t⌉`` bits,
is the floor:
a smaller budget raises :class:`MimofmInputError`.

Every function is pure and batched, runs in complex128 inside and returns complex64 (or the channel's
dtype where a channel goes in).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import torch

from mimofm.core.validation import MimofmInputError, check_channel, check_choice

__all__ = [
    "AMPLITUDES",
    "CodebookConfig",
    "CodebookFit",
    "Type2Feedback",
    "codebook_feedback_channel",
    "dft_beams",
    "fit_to_bits",
    "quantize_gain_db",
    "type1_bits",
    "type1_reconstruct",
    "type1_select",
    "type2_bits",
    "type2_decode",
    "type2_encode",
    "type2_reconstruct",
]

#: Type II wideband amplitude set (3 bits, TS 38.214 Table 5.2.2.2.3-2), index 0 … 7.
AMPLITUDES: tuple[float, ...] = (
    1.0,
    0.5**0.5,
    0.25**0.5,
    0.125**0.5,
    (1 / 16) ** 0.5,
    (1 / 32) ** 0.5,
    (1 / 64) ** 0.5,
    0.0,
)
_AMP_BITS = 3
_PSK = (4, 8)
_OVERSAMPLING = (4, 2, 1)  # candidates for fit_to_bits
_TYPE2_BEAMS = (4, 3, 2)
_CDT = torch.complex128


# --------------------------------------------------------------------------------------------- checks


def _int(value, name: str, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise MimofmInputError(f"`{name}` must be an integer >= {lo}, got {value!r}")
    return int(value)


def _geometry(rows, cols, o1, o2) -> tuple[int, int, int, int]:
    """Validate the array and oversampling; returns ``(N1, N2, O1, O2)`` = ``(cols, rows, o1, o2)``."""
    rows, cols = _int(rows, "rows"), _int(cols, "cols")
    if rows * cols < 2:
        raise MimofmInputError(f"a codebook needs at least 2 BS antennas, got rows={rows} x cols={cols}")
    o1 = (4 if cols > 1 else 1) if o1 is None else _int(o1, "o1")
    o2 = (4 if rows > 1 else 1) if o2 is None else _int(o2, "o2")
    if cols == 1 and o1 != 1:
        raise MimofmInputError(
            f"`o1` must be 1 for a single column (cols=1), got o1={o1}: "
            f"horizontal oversampling would only repeat codewords"
        )
    if rows == 1 and o2 != 1:
        raise MimofmInputError(
            f"`o2` must be 1 for a single row (rows=1, a horizontal ULA), got o2={o2}: "
            f"vertical oversampling would only repeat codewords"
        )
    return cols, rows, o1, o2


def _check_h(h, rows: int, cols: int) -> torch.Tensor:
    """Channel rows ``[..., N_t]`` with ``N_t = rows·cols``; complex, finite, no all-zero row."""
    check_channel(h, "h", min_rank=1)
    if h.shape[-1] != rows * cols:
        raise MimofmInputError(
            f"`h` must have last dimension N_t = rows x cols = {rows}x{cols} = {rows * cols} "
            f"(antenna index col*rows + row), got shape {list(h.shape)}"
        )
    return h


def _check_type2(n_ant: int, num_beams, n_psk) -> tuple[int, int]:
    num_beams = _int(num_beams, "num_beams")
    if num_beams > n_ant:
        raise MimofmInputError(
            f"`num_beams` (L={num_beams}) must be <= the number of orthogonal beams "
            f"N1*N2 = {n_ant} of a group"
        )
    if n_psk not in _PSK:
        raise MimofmInputError(f"`n_psk` must be 4 or 8 (QPSK or 8PSK phases), got {n_psk!r}")
    return num_beams, n_psk


def _check_index(index, n: int, name: str) -> torch.Tensor:
    integer = isinstance(index, torch.Tensor) and not (
        index.is_complex() or index.is_floating_point() or index.dtype == torch.bool
    )
    if not integer:
        raise MimofmInputError(f"`{name}` must be an integer torch.Tensor, got {index!r:.80}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
        raise MimofmInputError(
            f"`{name}` must lie in [0, {n}), got values in [{int(index.min())}, {int(index.max())}]"
        )
    return index.to(torch.int64)


# ---------------------------------------------------------------------------------------------- beams


def _axis(n: int, o: int, device) -> torch.Tensor:
    """One axis of the grid: ``[n, n·o]`` with entry ``exp(j2π·k·m/(n·o))`` (exact integer phases)."""
    k = torch.arange(n, device=device)
    m = torch.arange(n * o, device=device)
    ph = (torch.outer(k, m) % (n * o)).to(torch.float64) * (2 * math.pi / (n * o))  # [n, n*o]
    return torch.polar(torch.ones_like(ph), ph)


def _grid(n1: int, n2: int, o1: int, o2: int, device=None) -> torch.Tensor:
    """The grid, complex128 ``[N1·N2, N1·O1·N2·O2]``, row ``n1·N2 + n2``, column ``m1·N2·O2 + m2``."""
    # kron([N1, N1*O1], [N2, N2*O2]) -> [N1*N2, N1*O1*N2*O2]: row n1*N2+n2, column m1*(N2*O2)+m2
    return torch.kron(_axis(n1, o1, device), _axis(n2, o2, device)) / math.sqrt(n1 * n2)


def dft_beams(
    rows: int,
    cols: int,
    o1: int | None = None,
    o2: int | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The oversampled 2-D DFT grid (the Type I rank-1 codebook without co-phasing).

    Args:
        rows, cols: array, vertical × horizontal (``N2 = rows``, ``N1 = cols``); antenna ``col·rows + row``.
        o1, o2: horizontal / vertical oversampling (default 4; 1 along an axis with one element).
    Returns:
        complex64 ``[N_t, rows·o2·cols·o1]``, unit-norm columns; column ``k = m1·(rows·o2) + m2`` is
        beam ``(m1, m2)``, ``v[col·rows + row] = exp(j2π(m1·col/(cols·o1) + m2·row/(rows·o2)))/√N_t``.
    """
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    return _grid(n1, n2, o1, o2, device).to(torch.complex64)


# --------------------------------------------------------------------------------------------- Type I


def type1_bits(rows: int, cols: int, o1: int | None = None, o2: int | None = None) -> int:
    """Type I rank-1 PMI bits: ``⌈log2(N1·O1·N2·O2)⌉`` (one joint beam index, no co-phasing)."""
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    return math.ceil(math.log2(n1 * o1 * n2 * o2))


def type1_select(
    h: torch.Tensor, rows: int, cols: int, o1: int | None = None, o2: int | None = None
) -> torch.Tensor:
    """The UE's Type I choice: the grid beam maximising ``|h @ w|²``.

    Args:
        h: channel rows ``[..., N_t]`` complex (``y = h @ x``).
    Returns:
        int64 ``[...]``, a column index of :func:`dft_beams` (``< 2**type1_bits``).
    """
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    h = _check_h(h, rows, cols)
    g = h.to(_CDT) @ _grid(n1, n2, o1, o2, h.device)  # [..., M]
    return (g.real.square() + g.imag.square()).argmax(dim=-1)


def type1_reconstruct(
    index: torch.Tensor, rows: int, cols: int, o1: int | None = None, o2: int | None = None
) -> torch.Tensor:
    """The codeword (transmit vector) of a Type I report: int ``[...]`` -> complex64 ``[...,
    N_t]``, unit norm."""
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    index = _check_index(index, n1 * o1 * n2 * o2, "index")
    grid = _grid(n1, n2, o1, o2, index.device)  # [N_t, M]
    return grid.T[index].to(torch.complex64)  # [..., N_t]


# -------------------------------------------------------------------------------------------- Type II


def _type2_radices(
    n_ant: int, o1: int, o2: int, num_beams: int, n_psk: int
) -> tuple[int, int, int, int, int]:
    """Field sizes: (groups, beam sets, strongest, amplitude words, phase words)."""
    rest = num_beams - 1
    return o1 * o2, math.comb(n_ant, num_beams), num_beams, 2 ** (_AMP_BITS * rest), n_psk**rest


def type2_bits(
    rows: int, cols: int, num_beams: int = 4, n_psk: int = 8, o1: int | None = None, o2: int | None = None
) -> int:
    """Type II rank-1 PMI bits (one polarization, wideband amplitude and phase).

    ``⌈log2(O1·O2)⌉ + ⌈log2 C(N1·N2, L)⌉ + ⌈log2 L⌉ + (L − 1)·(3 + log2 N_PSK)``, ``L = num_beams``.
    Example, 4×4 array, O1 = O2 = 4, L = 4, 8PSK: 4 + ⌈log2 1820⌉ + 2 + 3·(3 + 3) = 4 + 11 + 2 + 18 = 35.
    """
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    num_beams, n_psk = _check_type2(n1 * n2, num_beams, n_psk)
    return sum(math.ceil(math.log2(r)) for r in _type2_radices(n1 * n2, o1, o2, num_beams, n_psk))


def _type2_setup(rows, cols, num_beams, n_psk, o1, o2) -> tuple[int, int, int, int, int, int]:
    """Validated ``(N1, N2, O1, O2, L, N_PSK)`` of a Type II report that fits one int64."""
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    num_beams, n_psk = _check_type2(n1 * n2, num_beams, n_psk)
    bits = type2_bits(rows, cols, num_beams, n_psk, o1, o2)
    if bits > 63:
        raise MimofmInputError(
            f"a Type II report of {bits} bits does not fit one int64; use fewer beams (num_beams={num_beams})"
        )
    return n1, n2, o1, o2, num_beams, n_psk


@dataclass(frozen=True)
class Type2Feedback:
    """The fields of a Type II report (all int64, batch shape ``[...]``).

    Attributes:
        group: ``[..., 2]`` ``(q1, q2)``.
        beams: ``[..., L]`` the group's beams, ascending, beam ``n1·N2 + n2`` is grid beam
            ``(O1·n1 + q1, O2·n2 + q2)``.
        strongest: ``[...]`` position in ``beams`` of the strongest beam (coefficient 1).
        amplitude: ``[..., L−1]`` index into ``AMPLITUDES`` of the other beams, in ``beams`` order.
        phase: ``[..., L−1]`` phase index ``p`` (phase ``2πp/N_PSK``), same order.
    """

    group: torch.Tensor
    beams: torch.Tensor
    strongest: torch.Tensor
    amplitude: torch.Tensor
    phase: torch.Tensor


def _binom_table(n: int, k: int, device) -> torch.Tensor:
    """int64 ``[k, n]``, entry ``[i, s] = C(s, i + 1)`` (non-decreasing in s)."""
    return torch.tensor(
        [[math.comb(s, i + 1) for s in range(n)] for i in range(k)], dtype=torch.int64, device=device
    )


def _digits(x: torch.Tensor, base: int, count: int) -> torch.Tensor:
    """Little-endian base-``base`` digits: int64 ``[...]`` -> ``[..., count]``."""
    p = base ** torch.arange(count, device=x.device)
    return (x[..., None] // p) % base


def _undigits(d: torch.Tensor, base: int) -> torch.Tensor:
    """Inverse of :func:`_digits`: ``[..., count]`` -> ``[...]``."""
    p = base ** torch.arange(d.shape[-1], device=d.device)
    return (d * p).sum(-1)


def _group_coefficients(h: torch.Tensor, n1: int, n2: int, o1: int, o2: int) -> torch.Tensor:
    """``c = h @ v`` for every group's orthogonal beams: ``[..., N_t]`` -> ``[..., O1·O2, N1·N2]``.

    Group ``g = q1·O2 + q2``, beam ``b = n1·N2 + n2`` is grid beam ``(O1·n1 + q1, O2·n2 + q2)``.
    """
    c = h.to(_CDT) @ _grid(n1, n2, o1, o2, h.device)  # [..., M], M = N1*O1*N2*O2, k = m1*(N2*O2) + m2
    # [..., M] -> [..., N1, O1, N2, O2] (m1 = n1*O1 + q1, m2 = n2*O2 + q2)
    c = c.reshape(*c.shape[:-1], n1, o1, n2, o2)
    # [..., N1, O1, N2, O2] -> [..., O1, O2, N1, N2]
    c = c.movedim((-3, -1), (-4, -3))
    # [..., O1, O2, N1, N2] -> [..., O1*O2, N1*N2]
    return c.reshape(*c.shape[:-4], o1 * o2, n1 * n2)


def _quantize(c: torch.Tensor, num_beams: int, n_psk: int):
    """Per group: L strongest beams, their coefficients relative to the strongest, quantised.

    ``c`` ``[..., G, B]`` -> beams ``[..., G, L]`` ascending, strongest ``[..., G]``, amplitude and phase
    indices ``[..., G, L]`` (the strongest's entries are 0 and 0, i.e. coefficient 1), and the correlation
    ``|h @ w| / ‖h‖`` of each group's quantised reconstruction ``[..., G]``.
    """
    p = c.real.square() + c.imag.square()  # [..., G, B]
    beams = p.topk(num_beams, dim=-1).indices.sort(dim=-1).values  # [..., G, L]
    cs = c.gather(-1, beams)  # [..., G, L]
    strongest = (cs.real.square() + cs.imag.square()).argmax(-1)  # [..., G]
    a = cs.conj()  # coefficients of the ideal transmit vector conj(h) on the beams
    rel = a / a.gather(-1, strongest[..., None])  # [..., G, L], 1 at the strongest
    amps = torch.tensor(AMPLITUDES, dtype=torch.float64, device=c.device)
    amp = (rel.abs()[..., None] - amps).abs().argmin(-1)  # [..., G, L]
    ph = torch.round(rel.angle() * (n_psk / (2 * math.pi))).to(torch.int64) % n_psk
    is_s = torch.nn.functional.one_hot(strongest, num_beams).bool()
    amp, ph = amp.masked_fill(is_s, 0), ph.masked_fill(is_s, 0)
    q = torch.polar(amps[amp], ph.to(torch.float64) * (2 * math.pi / n_psk))  # [..., G, L]
    # h @ w = Σ_b q_b c_b / ‖q‖ (orthonormal beams); ‖h‖² = Σ_B |c|² (a group is an orthonormal basis)
    hw = (q * cs).sum(-1).abs() / (q.abs().square().sum(-1).sqrt())
    corr = hw / p.sum(-1).sqrt()
    return beams, strongest, amp, ph, corr


def type2_encode(
    h: torch.Tensor,
    rows: int,
    cols: int,
    num_beams: int = 4,
    n_psk: int = 8,
    o1: int | None = None,
    o2: int | None = None,
) -> torch.Tensor:
    """The UE's Type II report, packed into one integer per channel row.

    Args:
        h: channel rows ``[..., N_t]`` complex.
        num_beams: ``L``; n_psk: 4 or 8; o1, o2: oversampling (see :func:`dft_beams`).
    Returns:
        int64 ``[...]`` in ``[0, 2**type2_bits(...))``: the mixed-radix number
        ``(((group·C + beam set)·L + strongest)·8^(L−1) + amplitudes)·N_PSK^(L−1) + phases``
        (:func:`type2_decode` recovers the fields). Group chosen by reconstruction correlation.
    """
    n1, n2, o1, o2, num_beams, n_psk = _type2_setup(rows, cols, num_beams, n_psk, o1, o2)
    h = _check_h(h, rows, cols)
    c = _group_coefficients(h, n1, n2, o1, o2)  # [..., G, N1*N2]
    beams, strongest, amp, ph, corr = _quantize(c, num_beams, n_psk)
    g = corr.argmax(-1, keepdim=True)  # [..., 1]
    beams = beams.gather(-2, g[..., None].expand(*g.shape, num_beams)).squeeze(-2)  # [..., L]
    strongest = strongest.gather(-1, g).squeeze(-1)  # [...]
    keep = ~torch.nn.functional.one_hot(strongest, num_beams).bool()  # [..., L]
    # [..., G, L] -> [..., L] (chosen group) -> [..., L-1] (strongest removed)
    amp = amp.gather(-2, g[..., None].expand(*g.shape, num_beams)).squeeze(-2)[keep]
    ph = ph.gather(-2, g[..., None].expand(*g.shape, num_beams)).squeeze(-2)[keep]
    amp = amp.reshape(*strongest.shape, num_beams - 1)  # [..., L-1]
    ph = ph.reshape(*strongest.shape, num_beams - 1)  # [..., L-1]
    _, n_sets, _, _, _ = _type2_radices(n1 * n2, o1, o2, num_beams, n_psk)
    table = _binom_table(n1 * n2, num_beams, h.device)  # [L, N1*N2]
    comb = table[torch.arange(num_beams, device=h.device), beams].sum(-1)  # [...]
    code = g.squeeze(-1) * n_sets + comb
    code = code * num_beams + strongest
    code = code * 2 ** (_AMP_BITS * (num_beams - 1)) + _undigits(amp, 2**_AMP_BITS)
    return code * n_psk ** (num_beams - 1) + _undigits(ph, n_psk)


def type2_decode(
    code: torch.Tensor,
    rows: int,
    cols: int,
    num_beams: int = 4,
    n_psk: int = 8,
    o1: int | None = None,
    o2: int | None = None,
) -> Type2Feedback:
    """Unpack :func:`type2_encode`'s integers ``[...]`` into their fields (:class:`Type2Feedback`)."""
    n1, n2, o1, o2, num_beams, n_psk = _type2_setup(rows, cols, num_beams, n_psk, o1, o2)
    radices = _type2_radices(n1 * n2, o1, o2, num_beams, n_psk)
    code = _check_index(code, math.prod(radices), "code")
    rest = num_beams - 1
    phase = _digits(code % radices[4], n_psk, rest)
    code = code // radices[4]
    amplitude = _digits(code % radices[3], 2**_AMP_BITS, rest)
    code = code // radices[3]
    strongest, code = code % num_beams, code // num_beams
    group, comb = code // radices[1], code % radices[1]
    table = _binom_table(n1 * n2, num_beams, code.device)  # [L, N1*N2]
    beams = []
    for i in range(num_beams - 1, -1, -1):  # greedy decoding of the combinatorial number system
        s = torch.searchsorted(table[i], comb[..., None], right=True) - 1  # [..., 1]
        comb = comb - table[i][s.squeeze(-1)]
        beams.append(s.squeeze(-1))
    beams = torch.stack(beams[::-1], dim=-1)  # [..., L] ascending
    return Type2Feedback(
        group=torch.stack((group // o2, group % o2), dim=-1),
        beams=beams,
        strongest=strongest,
        amplitude=amplitude,
        phase=phase,
    )


def type2_reconstruct(
    code: torch.Tensor,
    rows: int,
    cols: int,
    num_beams: int = 4,
    n_psk: int = 8,
    o1: int | None = None,
    o2: int | None = None,
) -> torch.Tensor:
    """The transmit vector of a Type II report: int64 ``[...]`` -> complex64 ``[..., N_t]``, unit norm.

    ``w = Σ_b a_b e^{jφ_b} v_b / ‖·‖`` over the report's ``L`` orthogonal beams (strongest: 1).
    """
    n1, n2, o1, o2 = _geometry(rows, cols, o1, o2)
    fb = type2_decode(code, rows, cols, num_beams, n_psk, o1, o2)
    dev = fb.beams.device
    keep = ~torch.nn.functional.one_hot(fb.strongest, num_beams).bool()  # [..., L]
    amps = torch.tensor(AMPLITUDES, dtype=torch.float64, device=dev)
    coef = torch.ones(*fb.beams.shape, dtype=_CDT, device=dev)  # [..., L]
    # [..., L-1] -> [n_kept]: the non-strongest beams' coefficients in keep's order
    coef[keep] = torch.polar(amps[fb.amplitude], fb.phase.to(torch.float64) * (2 * math.pi / n_psk)).reshape(
        -1
    )
    m1 = o1 * (fb.beams // n2) + fb.group[..., :1]  # [..., L]
    m2 = o2 * (fb.beams % n2) + fb.group[..., 1:]
    grid = _grid(n1, n2, o1, o2, dev)  # [N_t, M]
    v = grid.T[m1 * (n2 * o2) + m2]  # [..., L, N_t]
    w = (coef[..., None] * v).sum(-2)  # [..., N_t]
    return (w / torch.linalg.vector_norm(w, dim=-1, keepdim=True)).to(torch.complex64)


# --------------------------------------------------------------------------------- gain and budgets


def quantize_gain_db(
    g_db: torch.Tensor, bits: int, lo: float, hi: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform scalar quantiser in dB: ``2**bits`` levels ``lo + k·Δ``, ``Δ = (hi − lo)/(2**bits − 1)``.

    Args:
        g_db: real ``[...]`` values in dB (e.g. ``10·log10‖h‖²``); outside ``[lo, hi]`` they clip.
    Returns:
        ``(index, value)``: int64 ``[...]`` in ``[0, 2**bits)`` and float ``[...]`` (``g_db``'s dtype)
        the level; inside ``[lo, hi]`` ``|value − g_db| <= Δ/2``. Monotone non-decreasing.
    """
    bits = _int(bits, "bits")
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise MimofmInputError(f"the dB range must be finite with lo < hi, got lo={lo}, hi={hi}")
    if not isinstance(g_db, torch.Tensor) or g_db.is_complex() or not g_db.is_floating_point():
        raise MimofmInputError(f"`g_db` must be a real floating torch.Tensor, got {g_db!r:.80}")
    if not bool(torch.isfinite(g_db).all()):
        raise MimofmInputError("`g_db` contains NaN/Inf; every value must be finite")
    n = 2**bits
    step = (hi - lo) / (n - 1)
    index = torch.round((g_db.to(torch.float64) - lo) / step).clamp(0, n - 1).to(torch.int64)
    return index, (lo + index.to(torch.float64) * step).to(g_db.dtype)


@dataclass(frozen=True)
class CodebookConfig:
    """One codebook configuration; ``pmi_bits`` + ``cqi_bits`` = ``total_bits``."""

    kind: Literal["type1", "type2"]
    rows: int
    cols: int
    o1: int
    o2: int
    num_beams: int = 1  # Type II ``L`` (1 for Type I)
    n_psk: int = 0  # Type II phase alphabet (0 for Type I)
    cqi_bits: int = 4

    @property
    def pmi_bits(self) -> int:
        """Bits of the precoding-matrix indicator (Type I or Type II, from array and oversampling)."""
        if self.kind == "type1":
            return type1_bits(self.rows, self.cols, self.o1, self.o2)
        return type2_bits(self.rows, self.cols, self.num_beams, self.n_psk, self.o1, self.o2)

    @property
    def total_bits(self) -> int:
        """Feedback bits of the configuration: ``pmi_bits + cqi_bits``."""
        return self.pmi_bits + self.cqi_bits


@dataclass(frozen=True)
class CodebookFit:
    """What a budget buys: the Type I config (always) and the Type II config (``None`` if none fits)."""

    bits: int
    type1: CodebookConfig
    type2: CodebookConfig | None


def _oversamplings(rows: int, cols: int) -> list[tuple[int, int]]:
    """Candidate ``(o1, o2)``, richest first: most codewords, then balanced (``(2, 2)`` before ``(4, 1)``:
    on the 38.901 UPA tasks vertical oversampling is worth as much as horizontal), then horizontal."""
    c1 = _OVERSAMPLING if cols > 1 else (1,)
    c2 = _OVERSAMPLING if rows > 1 else (1,)
    return sorted(((a, b) for a in c1 for b in c2), key=lambda ab: (-ab[0] * ab[1], max(ab), -ab[0]))


def fit_to_bits(rows: int, cols: int, bits: int, cqi_bits: int = 4) -> CodebookFit:
    """The richest Type I and Type II configurations within a per-user budget of ``bits`` feedback bits.

    ``cqi_bits`` (default 4; 0 = no gain report) are reserved for the wideband gain value, the rest
    pays the PMI. Type I: the oversampling ``(o1, o2) ∈ {4, 2, 1}²`` with the most codewords that fits.
    Type II: the largest ``L ∈ {4, 3, 2}``, then the richest oversampling, then ``N_PSK ∈ {8, 4}``, that
    fit (``None`` if none does); oversampling ranks before the phase alphabet because on the 38.901
    tasks (T1, T4, T6, T7) dropping 8PSK to QPSK costs ~0.01–0.02 of mean ``|h @ w|²/‖h‖²`` while
    dropping ``O = 2`` to ``O = 1`` costs ~0.04–0.06. Raises :class:`MimofmInputError` if not even
    Type I without oversampling (``⌈log2 N_t⌉`` bits) fits.

    Returns:
        :class:`CodebookFit` with ``type1`` (:class:`CodebookConfig`) and ``type2`` (or ``None``).
    """
    n1, n2, _, _ = _geometry(rows, cols, 1, 1)
    bits, cqi_bits = _int(bits, "bits", 0), _int(cqi_bits, "cqi_bits", 0)
    room = bits - cqi_bits
    over = _oversamplings(rows, cols)
    t1 = [CodebookConfig("type1", rows, cols, a, b, cqi_bits=cqi_bits) for a, b in over]
    t1 = [c for c in t1 if c.pmi_bits <= room]
    if not t1:
        need = type1_bits(rows, cols, 1, 1)
        raise MimofmInputError(
            f"a per-user feedback budget of `bits`={bits} ({room} after {cqi_bits} CQI bits) cannot "
            f"hold even a "
            f"Type I beam index without oversampling on a {rows}x{cols} array, which needs "
            f"ceil(log2 {n1 * n2}) = "
            f"{need} bits (+{cqi_bits} CQI = {need + cqi_bits}); raise `bits` to >= {need + cqi_bits}"
            + (f" or lower `cqi_bits` to <= {bits - need}" if bits >= need else "")
        )
    t2 = [
        CodebookConfig("type2", rows, cols, a, b, num_beams, n_psk, cqi_bits)
        for num_beams in _TYPE2_BEAMS
        if num_beams <= n1 * n2
        for a, b in over
        for n_psk in (8, 4)
    ]
    t2 = [c for c in t2 if c.pmi_bits <= room]
    return CodebookFit(bits=bits, type1=t1[0], type2=t2[0] if t2 else None)


# ------------------------------------------------------------------------------------------ the BS side


def codebook_feedback_channel(
    h: torch.Tensor,
    rows: int,
    cols: int,
    bits: int,
    kind: Literal["type1", "type2"] = "type1",
    cqi_bits: int = 4,
    gain_range_db: tuple[float, float] | None = None,
) -> torch.Tensor:
    """The channels the BS rebuilds from each user's codebook report within ``bits`` bits per user.

    Each user reports the PMI of :func:`fit_to_bits`'s configuration for ``kind`` and, with
    ``cqi_bits > 0``, its gain ``10·log10‖h_u‖²`` through :func:`quantize_gain_db` over
    ``gain_range_db`` (default ``10·log10 N_t + (−20, +10)`` dB, for channels normalised to
    ``E‖h‖² = N_t``; pass the range that matches your scaling, e.g. shifted by ``snr_db`` for
    SNR-scaled channels). ``cqi_bits = 0`` uses the exact norm (ideal gain knowledge, no bits spent).
    The BS's channel row is ``ĥ_u = ĝ_u · conj(w_u)``: ``w_u`` the reported unit-norm codeword,
    ``ĝ_u`` the quantised norm. Feed the result to ``zf`` / ``rzf`` / ``wmmse``.

    Args:
        h: true channels ``[..., K, N_t]`` complex, row u = h_u (``y = H @ W @ x``).
        bits: per-user feedback budget (integer; floor a fraction of ``N_t`` first).
    Returns:
        ``[..., K, N_t]`` of ``h``'s dtype.
    Raises:
        MimofmInputError: bad shapes, a budget too small for ``kind``, or a ``gain_range_db`` that
        misses the median user gain (a scaling mismatch).
    """
    check_choice(kind, "codebook kind", ("type1", "type2"))
    check_channel(h, "h")
    fit = fit_to_bits(rows, cols, bits, cqi_bits)
    cfg = fit.type1 if kind == "type1" else fit.type2
    if cfg is None:
        least = min(type2_bits(rows, cols, 2, 4, a, b) for a, b in _oversamplings(rows, cols))
        raise MimofmInputError(
            f"a per-user budget of `bits`={bits} ({bits - cqi_bits} after {cqi_bits} CQI bits) "
            f"holds no Type II "
            f"report on a {rows}x{cols} array: the smallest (L=2, QPSK, no oversampling) needs {least} bits; "
            f"use kind='type1' ({fit.type1.pmi_bits} bits) or a larger budget"
        )
    h = _check_h(h, rows, cols)
    if kind == "type1":
        w = type1_reconstruct(type1_select(h, rows, cols, cfg.o1, cfg.o2), rows, cols, cfg.o1, cfg.o2)
    else:
        code = type2_encode(h, rows, cols, cfg.num_beams, cfg.n_psk, cfg.o1, cfg.o2)
        w = type2_reconstruct(code, rows, cols, cfg.num_beams, cfg.n_psk, cfg.o1, cfg.o2)
    h64 = h.to(_CDT)
    norm2 = h64.real.square().sum(-1) + h64.imag.square().sum(-1)  # [..., K]
    if cqi_bits == 0:
        gain = norm2.sqrt()
    else:
        ref = 10 * math.log10(rows * cols)
        if gain_range_db is None:
            lo, hi = ref - 20.0, ref + 10.0
        else:
            try:
                lo, hi = (float(x) for x in gain_range_db)
            except (TypeError, ValueError):
                raise MimofmInputError(
                    f"`gain_range_db` must be a pair (lo, hi) in dB, got {gain_range_db!r}"
                ) from None
        g_db = 10 * torch.log10(norm2)
        med = float(g_db.median())
        if not lo <= med <= hi:
            raise MimofmInputError(
                f"the median user gain 10*log10|h|^2 = {med:.1f} dB lies outside `gain_range_db` = "
                f"({lo:.1f}, "
                f"{hi:.1f}) dB; the CQI range must match the channel's scaling, pass gain_range_db=(lo, hi)"
            )
        _, gq = quantize_gain_db(g_db, cqi_bits, lo, hi)
        gain = 10 ** (gq / 20)
    return (gain[..., None] * w.to(_CDT).conj()).to(h.dtype)
