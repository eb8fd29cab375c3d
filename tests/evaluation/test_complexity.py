import math

import pytest
import torch

from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.complexity import complexity, complexity_table, mimofm_multiplications, paper_counts


def test_paper_formulas_reproduce_the_papers_numbers():
    # fm paper, Table II (N_U = 4, N_T = 64): ZF 0.014 M FLOPs, WMMSE 93.5 M at I = 16
    fm_zf = paper_counts("zf", 4, 64)["fm Table II FLOPs"]
    fm_w = paper_counts("wmmse", 4, 64, 16)["fm Table II FLOPs"]
    assert int(fm_zf / 1e3) == 14  # 14,635 FLOPs, printed as 0.014 M
    assert round(fm_w / 1e6, 1) == 93.5
    # PaPP paper, Table I: WMMSE 36.1 M multiplications at I = 12.5, ZF 8.4 K
    papp_w = paper_counts("wmmse", 4, 64, 12.5)["PaPP Table I real multiplications"]
    assert abs(papp_w / 1e6 - 36.1) < 0.1
    assert round(paper_counts("zf", 4, 64)["PaPP Table I real multiplications"] / 1e3, 1) == 8.4


def test_measured_flops_of_a_known_matmul():
    """h.mH @ G for [1, K, N]: (N×K)·(K×K) is 2·N·K·K FLOPs as counted by torch."""
    k, n = 3, 8

    def toy(h):
        g = torch.eye(k, dtype=h.dtype)
        return h.mH @ g

    r = complexity(toy, k, n, batch_sizes=(1, 16), repeats=2)
    assert r.measured_flops_matmul_only == 2 * n * k * k
    assert all(math.isfinite(t) and t > 0 for t in r.seconds_per_precoder.values())
    assert r.precoder == "toy"


def test_registry_precoder_report_and_table():
    zf = complexity("zf", 4, 16, batch_sizes=(1, 8), repeats=1)
    w = complexity("wmmse", 4, 16, batch_sizes=(1, 8), repeats=1)
    assert w.iterations is not None and w.iterations >= 1
    assert set(zf.analytic) == {"fm Table II FLOPs", "PaPP Table I real multiplications"}
    assert w.mimofm_multiplications > zf.mimofm_multiplications > mimofm_multiplications("mrt", 4, 16)
    rows = complexity_table([zf, w])
    assert rows[0]["time ratio to zf @ batch 8"] == pytest.approx(1.0)
    assert "time ratio to zf @ batch 1" in rows[1]


def test_unknown_precoder():
    with pytest.raises(MimofmInputError, match="unknown precoder"):
        complexity("magic", 4, 16)


def test_measured_fm_flops_match_the_architecture_count():
    from mimofm.models.fm import FMConfig, FMPrecoder, fm_flops

    cfg = FMConfig(num_bs_ant=16, num_ue=4, d_model=32, num_attention_heads=2, num_layers=2, ffn=64)
    model = FMPrecoder(cfg).eval()
    rep = complexity(lambda h: model(h.to(torch.complex64)), 4, 16, batch_sizes=(1,), repeats=1)
    # the counter sees the eval-mode transformer's linear layers (fast path off while counting) and the
    # head's complex matmuls, not the attention products of scaled_dot_product_attention: within 5%
    assert rep.measured_flops_matmul_only == pytest.approx(fm_flops(cfg), rel=0.05)
    assert rep.measured_flops_matmul_only > 0.5 * fm_flops(cfg)  # not the fused path's near-zero count
