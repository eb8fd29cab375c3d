import math

import numpy as np
import pytest
import torch

from mimofm.core.validation import MimofmInputError
from mimofm.precoders.codebook import (
    AMPLITUDES,
    codebook_feedback_channel,
    dft_beams,
    fit_to_bits,
    quantize_gain_db,
    type1_bits,
    type1_reconstruct,
    type1_select,
    type2_bits,
    type2_decode,
    type2_encode,
    type2_reconstruct,
)
from mimofm.precoders.linear import zf
from tests.conftest import rayleigh


def corr(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``|h @ w| / (‖h‖ ‖w‖)`` per row (w a transmit vector, so w ∝ conj(h) gives 1)."""
    h, w = h.to(torch.complex128), w.to(torch.complex128)
    return (h * w).sum(-1).abs() / (h.norm(dim=-1) * w.norm(dim=-1))


def row_corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|<a, b>| / (‖a‖ ‖b‖)`` between two channel rows."""
    a, b = a.to(torch.complex128), b.to(torch.complex128)
    return (a.conj() * b).sum(-1).abs() / (a.norm(dim=-1) * b.norm(dim=-1))


# ---------------------------------------------------------------------------------------------- grid


def test_dft_beams_unit_norm_and_orthogonal_groups():
    rows, cols, o1, o2 = 3, 4, 4, 4
    b = dft_beams(rows, cols).to(torch.complex128)
    assert b.shape == (12, 3 * 4 * 4 * 4) and dft_beams(rows, cols).dtype == torch.complex64
    torch.testing.assert_close(b.norm(dim=0), torch.ones(b.shape[1], dtype=torch.float64))
    for q1 in range(o1):
        for q2 in range(o2):
            cols_g = [(o1 * n1 + q1) * (rows * o2) + o2 * n2 + q2 for n1 in range(cols) for n2 in range(rows)]
            g = b[:, cols_g]
            torch.testing.assert_close(g.mH @ g, torch.eye(12, dtype=torch.complex128), atol=1e-6, rtol=0)
    # the formula of the docstring, entry by entry
    m1, m2 = 7, 5
    v = b[:, m1 * (rows * o2) + m2]
    for c in range(cols):
        for r in range(rows):
            ref = np.exp(2j * np.pi * (m1 * c / (cols * o1) + m2 * r / (rows * o2))) / math.sqrt(12)
            assert abs(complex(v[c * rows + r]) - ref) < 1e-6
    assert dft_beams(1, 8).shape == (8, 32)  # ULA: O2 = 1


def _steering(rows, cols, theta, phi, order="col-major"):
    """Plane-wave channel from physics: elements at (y, z) = (col, row)·λ/2, direction (θ zenith, φ
    azimuth)."""
    h = np.zeros(rows * cols, dtype=complex)
    for c in range(cols):
        for r in range(rows):
            phase = 2 * np.pi * 0.5 * (c * np.sin(theta) * np.sin(phi) + r * np.cos(theta))
            i = c * rows + r if order == "col-major" else r * cols + c
            h[i] = np.exp(1j * phase)
    return torch.from_numpy(h).to(torch.complex64)


def test_type1_recovers_physical_steering_vector_upa():
    # 3 rows x 4 cols, O1 = O2 = 4: spatial frequencies chosen on the grid:
    # 0.5 sinθ sinφ = 3/16 (m1 = 3 of 16), 0.5 cosθ = -2/12 (m2 = -2 of 12)
    rows, cols = 3, 4
    cos_t = -4 / 12
    theta = math.acos(cos_t)
    phi = math.asin((6 / 16) / math.sin(theta))
    h = _steering(rows, cols, theta, phi)
    idx = type1_select(h, rows, cols)
    # the best transmit beam is conj(h): frequencies (-3 mod 16, +2 mod 12)
    assert int(idx) == 13 * 12 + 2
    assert float(corr(h, type1_reconstruct(idx, rows, cols))) == pytest.approx(1.0, abs=1e-5)
    # the same wave laid out row-major (the wrong order) is not a grid beam of this codebook
    h_wrong = _steering(rows, cols, theta, phi, order="row-major")
    idx_wrong = type1_select(h_wrong, rows, cols)
    assert int(idx_wrong) != 13 * 12 + 2
    assert float(corr(h_wrong, type1_reconstruct(idx_wrong, rows, cols))) < 0.99


def test_type1_recovers_physical_steering_vector_ula():
    rows, cols = 1, 8
    h = _steering(rows, cols, math.pi / 2, math.asin(2 * 5 / 32))  # 0.5 sinφ = 5/32
    idx = type1_select(h, rows, cols)
    assert int(idx) == 32 - 5
    assert float(corr(h, type1_reconstruct(idx, rows, cols))) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("rows,cols", [(3, 4), (1, 8), (4, 2)])
def test_type1_conj_grid_beam_round_trip(rows, cols):
    b = dft_beams(rows, cols)
    k = torch.tensor([0, 5, b.shape[1] - 1, b.shape[1] // 3])
    h = b.T[k].conj() * torch.tensor(0.8 - 1.3j, dtype=torch.complex64)  # [4, N_t]
    idx = type1_select(h, rows, cols)
    assert idx.tolist() == k.tolist()
    w = type1_reconstruct(idx, rows, cols)
    assert w.shape == (4, rows * cols) and w.dtype == torch.complex64
    torch.testing.assert_close(corr(h, w), torch.ones(4, dtype=torch.float64), atol=1e-5, rtol=0)


def test_type1_equals_brute_force():
    rows, cols, o1, o2 = 2, 3, 4, 2
    h = rayleigh(40, 1, rows * cols, seed=5)[:, 0]  # [40, 6]
    best = []
    for hn in h.numpy():
        gains = {}
        for m1 in range(cols * o1):
            for m2 in range(rows * o2):
                w = np.array(
                    [
                        np.exp(2j * np.pi * (m1 * c / (cols * o1) + m2 * r / (rows * o2)))
                        for c in range(cols)
                        for r in range(rows)
                    ]
                )
                gains[m1 * rows * o2 + m2] = abs(hn @ w) ** 2
        best.append(max(gains, key=gains.get))
    assert type1_select(h, rows, cols, o1, o2).tolist() == best
    assert type1_bits(rows, cols, o1, o2) == math.ceil(math.log2(cols * o1 * rows * o2)) == 6


# -------------------------------------------------------------------------------------------- Type II


def _type2_channel(rows, cols, o1, o2, group, beams, strongest, amp, phase, n_psk, scale):
    """``conj(Σ a_b v_b)·scale`` for a group's beams with coefficients on the quantisation alphabet."""
    b = dft_beams(rows, cols, o1, o2).to(torch.complex128)
    coef, j = [], 0
    for pos in range(len(beams)):
        if pos == strongest:
            coef.append(1.0)
        else:
            coef.append(AMPLITUDES[amp[j]] * np.exp(2j * np.pi * phase[j] / n_psk))
            j += 1
    w = 0
    for beam, a in zip(beams, coef):
        n1, n2 = divmod(beam, rows)
        w = w + a * b[:, (o1 * n1 + group[0]) * (rows * o2) + o2 * n2 + group[1]]
    w = w / w.norm()
    return (w.conj() * scale), w


@pytest.mark.parametrize(
    "rows,cols,o1,o2,L,n_psk,group,beams,strongest,amp,phase",
    [
        (3, 4, 4, 4, 4, 8, (1, 3), [0, 5, 7, 11], 2, [1, 3, 6], [5, 0, 2]),
        (1, 8, 4, 1, 3, 4, (2, 0), [1, 2, 6], 0, [2, 4], [3, 1]),
        (4, 4, 2, 2, 2, 8, (0, 1), [3, 14], 1, [5], [7]),
    ],
)
def test_type2_exact_on_alphabet(rows, cols, o1, o2, L, n_psk, group, beams, strongest, amp, phase):
    h, w = _type2_channel(rows, cols, o1, o2, group, beams, strongest, amp, phase, n_psk, 0.7 - 1.1j)
    h = torch.stack([h, 2 * h]).to(torch.complex64)  # [2, N_t] batch
    code = type2_encode(h, rows, cols, L, n_psk, o1, o2)
    assert code.shape == (2,) and int(code.max()) < 2 ** type2_bits(rows, cols, L, n_psk, o1, o2)
    fb = type2_decode(code, rows, cols, L, n_psk, o1, o2)
    assert fb.group.tolist() == [list(group)] * 2
    assert fb.beams.tolist() == [beams] * 2
    assert fb.strongest.tolist() == [strongest] * 2
    assert fb.amplitude.tolist() == [amp] * 2 and fb.phase.tolist() == [phase] * 2
    w_hat = type2_reconstruct(code, rows, cols, L, n_psk, o1, o2)
    torch.testing.assert_close(corr(h, w_hat), torch.ones(2, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        w_hat[0].to(torch.complex128), w, atol=1e-5, rtol=0
    )  # strongest phase is 0 in both


def test_type2_zero_amplitude_still_exact():
    rows, cols = 2, 4
    h, _ = _type2_channel(rows, cols, 4, 4, (3, 0), [1, 4, 6, 7], 1, [0, 7, 2], [1, 4, 6], 8, 1.0)
    code = type2_encode(h[None], rows, cols, 4, 8)
    assert float(corr(h[None], type2_reconstruct(code, rows, cols, 4, 8))) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("rows,cols,L,n_psk", [(12, 8, 4, 8), (16, 16, 4, 8), (1, 64, 3, 4), (8, 8, 2, 4)])
def test_type2_bit_count_formula(rows, cols, L, n_psk):
    o1, o2 = 4, (4 if rows > 1 else 1)
    expect = (
        math.ceil(math.log2(o1 * o2))
        + math.ceil(math.log2(math.comb(rows * cols, L)))
        + math.ceil(math.log2(L))
        + (L - 1) * (3 + int(math.log2(n_psk)))
    )
    assert type2_bits(rows, cols, L, n_psk) == expect


def test_type2_codes_fit_and_round_trip_on_random_channels():
    rows, cols, L, n_psk = 4, 4, 4, 8
    h = rayleigh(64, 1, 16, seed=7, dtype=torch.complex64)[:, 0]
    code = type2_encode(h, rows, cols, L, n_psk)
    bits = type2_bits(rows, cols, L, n_psk)
    assert bits == 4 + 11 + 2 + 18
    assert int(code.min()) >= 0 and int(code.max()) < 2**bits
    fb = type2_decode(code, rows, cols, L, n_psk)
    assert bool((fb.beams[:, 1:] > fb.beams[:, :-1]).all()) and int(fb.beams.max()) < 16
    # the strongest beam carries the largest projection of the channel
    b = dft_beams(rows, cols).to(torch.complex128)
    m = (4 * (fb.beams // rows) + fb.group[:, :1]) * (rows * 4) + 4 * (fb.beams % rows) + fb.group[:, 1:]
    c = (h.to(torch.complex128)[:, None, :] @ b.T[m].transpose(-2, -1)).squeeze(-2).abs()  # [64, L]
    assert c.argmax(-1).tolist() == fb.strongest.tolist()


def test_type2_beats_type1_on_random_channels():
    rows, cols = 4, 4
    h = rayleigh(300, 1, 16, seed=8, dtype=torch.complex64)[:, 0]
    c1 = corr(h, type1_reconstruct(type1_select(h, rows, cols), rows, cols))
    c = {L: corr(h, type2_reconstruct(type2_encode(h, rows, cols, L, 8), rows, cols, L, 8)) for L in (2, 4)}
    assert float(c[4].mean()) > float(c[2].mean()) > float(c1.mean()) + 0.05
    # even the worst user keeps most of its direction with 4 beams
    assert float(c[4].min()) > 0.5


# ------------------------------------------------------------------------------------- budgets and CQI


ARRAYS = [(12, 8), (12, 6), (8, 8), (16, 8), (16, 16), (1, 64)]


@pytest.mark.parametrize("rows,cols", ARRAYS)
def test_fit_to_bits_within_budget_and_richest(rows, cols):
    n = rows * cols
    prev = None
    for bits in range(math.ceil(math.log2(n)) + 4, 70, 3):
        fit = fit_to_bits(rows, cols, bits)
        assert fit.type1.total_bits <= bits and fit.type1.cqi_bits == 4
        # no oversampling with more codewords fits
        for o1 in (1, 2, 4) if cols > 1 else (1,):
            for o2 in (1, 2, 4) if rows > 1 else (1,):
                if o1 * o2 > fit.type1.o1 * fit.type1.o2:
                    assert type1_bits(rows, cols, o1, o2) + 4 > bits
        if fit.type2 is not None:
            assert fit.type2.total_bits <= bits
            assert fit.type2.pmi_bits == type2_bits(
                rows, cols, fit.type2.num_beams, fit.type2.n_psk, fit.type2.o1, fit.type2.o2
            )
            if fit.type2.num_beams < 4:  # no larger L fits with any setting
                assert type2_bits(rows, cols, fit.type2.num_beams + 1, 4, 1, 1) + 4 > bits
        else:
            assert type2_bits(rows, cols, 2, 4, 1, 1) + 4 > bits
        if prev is not None:  # a larger budget never buys less
            assert fit.type1.pmi_bits >= prev.type1.pmi_bits
        prev = fit


def test_fit_to_bits_known_values():
    fit = fit_to_bits(12, 8, 24)  # T1: 12x8, B = N_t/4
    assert (fit.type1.o1, fit.type1.o2, fit.type1.pmi_bits) == (4, 4, 11)
    t2 = fit.type2
    assert (t2.num_beams, t2.o1, t2.o2, t2.n_psk, t2.pmi_bits) == (2, 2, 1, 4, 20)
    fit = fit_to_bits(16, 16, 64)
    assert (fit.type2.num_beams, fit.type2.n_psk, fit.type2.o1, fit.type2.o2) == (4, 8, 4, 4)
    # Type I on 12x8 (N1 = 8, N2 = 12): 96 / 192 / 384 / 768 / 1536 codewords = 7 / 8 / 9 / 10 / 11 bits
    for bits, o in ((11, (1, 1)), (12, (2, 1)), (13, (2, 2)), (14, (4, 2)), (15, (4, 4))):
        fit = fit_to_bits(12, 8, bits)
        assert (fit.type1.o1, fit.type1.o2) == o and fit.type2 is None


def test_fit_to_bits_too_small_raises_naming_the_budget():
    with pytest.raises(
        MimofmInputError, match=r"`bits`=8 .*needs ceil\(log2 64\) = 6 bits.*`cqi_bits` to <= 2"
    ):
        fit_to_bits(8, 8, 8)
    assert fit_to_bits(8, 8, 8, cqi_bits=2).type1.pmi_bits == 6
    with pytest.raises(MimofmInputError, match="holds no Type II"):
        codebook_feedback_channel(rayleigh(1, 2, 64, dtype=torch.complex64), 8, 8, 16, kind="type2")


def test_quantize_gain_db_monotone_within_half_step():
    lo, hi, bits = -10.0, 20.0, 4
    step = (hi - lo) / 15
    g = torch.linspace(-20, 30, 2001, dtype=torch.float64)
    idx, val = quantize_gain_db(g, bits, lo, hi)
    assert bool((idx[1:] >= idx[:-1]).all()) and bool((val[1:] >= val[:-1]).all())
    assert int(idx.min()) == 0 and int(idx.max()) == 15 and len(torch.unique(idx)) == 16
    inside = (g >= lo) & (g <= hi)
    assert float((val - g)[inside].abs().max()) <= step / 2 + 1e-12
    assert float(val[g < lo].max()) == lo and float(val[g > hi].min()) == hi


# ------------------------------------------------------------------------------------------ the BS side


def test_feedback_channel_exact_beams_lets_zf_null_interference():
    rows, cols = 4, 4
    b = dft_beams(rows, cols)
    k = torch.tensor([[3, 40, 77, 130], [1, 2, 200, 255]])
    h = b.T[k].conj() * 4.0  # [2, 4 users, 16], ‖h‖² = 16 = N_t: on a CQI level
    for kind, bits in (("type1", 16), ("type2", 60)):
        h_fb = codebook_feedback_channel(h, rows, cols, bits, kind=kind)
        assert h_fb.shape == h.shape and h_fb.dtype == h.dtype
        torch.testing.assert_close(
            row_corr(h_fb, h), torch.ones(2, 4, dtype=torch.float64), atol=1e-5, rtol=0
        )
        torch.testing.assert_close(h_fb.norm(dim=-1), h.norm(dim=-1), atol=1e-4, rtol=0)
        g = (h.to(torch.complex128) @ zf(h_fb).to(torch.complex128)).abs()
        off = g - torch.diag_embed(torch.diagonal(g, dim1=-2, dim2=-1))
        assert float(off.max()) < 1e-4 * float(g.max())


def test_feedback_channel_direction_and_gain():
    rows, cols = 4, 4
    h = rayleigh(30, 3, 16, seed=9, dtype=torch.complex64)  # per-antenna SNR 10 dB: ‖h‖² ~ 160 (22 dB)
    lo, hi = 10.0, 30.0
    fit = fit_to_bits(rows, cols, 16)
    h_fb = codebook_feedback_channel(h, rows, cols, 16, gain_range_db=(lo, hi))
    w = type1_reconstruct(
        type1_select(h, rows, cols, fit.type1.o1, fit.type1.o2), rows, cols, fit.type1.o1, fit.type1.o2
    )
    torch.testing.assert_close(row_corr(h_fb, h), corr(h, w), atol=1e-5, rtol=0)  # ĥ ∝ conj(w)
    g_db = 10 * torch.log10(h.to(torch.complex128).norm(dim=-1) ** 2)
    _, gq = quantize_gain_db(g_db, 4, lo, hi)
    torch.testing.assert_close(
        20 * torch.log10(h_fb.to(torch.complex128).norm(dim=-1)), gq, atol=1e-4, rtol=0
    )
    # ideal gain with cqi_bits=0; Type II at a richer budget points closer to h on average
    h0 = codebook_feedback_channel(h, rows, cols, 12, cqi_bits=0)
    torch.testing.assert_close(h0.norm(dim=-1), h.norm(dim=-1), rtol=1e-5, atol=0)
    h2 = codebook_feedback_channel(h, rows, cols, 40, kind="type2", gain_range_db=(lo, hi))
    assert float(row_corr(h2, h).mean()) > float(row_corr(h_fb, h).mean()) + 0.05


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda h: type1_select(h, 3, 3), "last dimension N_t"),
        (lambda h: type1_select(h.real, 2, 4), "complex"),
        (lambda h: type1_select(h, 1, 8, o2=4), "`o2` must be 1"),
        (lambda h: type1_select(h, 8, 1, o1=2), "`o1` must be 1"),
        (lambda h: type2_encode(h, 2, 4, num_beams=9), "num_beams"),
        (lambda h: type2_encode(h, 2, 4, n_psk=16), "n_psk"),
        (lambda h: type2_bits(2, 4, 0), "num_beams"),
        (lambda h: dft_beams(0, 4), "rows"),
        (lambda h: dft_beams(1, 1), "at least 2"),
        (lambda h: type1_reconstruct(torch.tensor([128]), 2, 4), r"\[0, 128\)"),
        (lambda h: type1_reconstruct(torch.tensor([1.0]), 2, 4), "integer"),
        (lambda h: fit_to_bits(2, 4, 2.5), "`bits`"),
        (lambda h: quantize_gain_db(torch.zeros(3), 4, 5.0, 1.0), "lo < hi"),
        (lambda h: codebook_feedback_channel(h[None], 2, 4, 12, kind="type3"), "codebook kind"),
        (lambda h: codebook_feedback_channel(h[None] * 1e-6, 2, 4, 12), "gain_range_db"),
        (lambda h: codebook_feedback_channel(h[None] * 0, 2, 4, 12), "all-zero"),
    ],
)
def test_bad_input_raises(call, match):
    h = rayleigh(3, 1, 8, seed=1, dtype=torch.complex64)[:, 0]  # [3, 8]
    with pytest.raises(MimofmInputError, match=match):
        call(h)


def test_bad_gain_range_and_oversized_report_raise():
    h = rayleigh(1, 2, 8, seed=2, dtype=torch.complex64)
    with pytest.raises(MimofmInputError, match="gain_range_db"):
        codebook_feedback_channel(h, 2, 4, 12, gain_range_db=(1.0, 2.0, 3.0))
    with pytest.raises(MimofmInputError, match="int64"):
        type2_encode(rayleigh(1, 1, 256, dtype=torch.complex64)[0], 16, 16, num_beams=12)
