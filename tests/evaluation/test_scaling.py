"""The scaling harness on small sizes: ratios to WMMSE from the same run, neural models only where they
can."""

import pytest
import torch

from mimofm.core.validation import MimofmInputError
from mimofm.evaluation import scaling as sc
from mimofm.evaluation.scaling import ScalingConfig, scaling


def test_sweeps_report_ratios_to_wmmse_and_no_rate_for_untrained_sizes():
    cfg = ScalingConfig(
        antennas=[8, 64],
        users=[2],
        users_fixed=4,
        antennas_fixed=8,
        methods=["zf", "wmmse", "fm", "papp"],
        batch=4,
        repeats=1,
        wifoe_task=None,
    )
    rows = scaling(cfg)["rows"]
    assert {(r["sweep"], r["num_bs_ant"], r["num_ue"]) for r in rows} == {
        ("N_T", 8, 4),
        ("N_T", 64, 4),
        ("N_U", 8, 2),
    }
    for r in rows:
        assert r["seconds_per_precoder"] > 0
        if r["method"] == "wmmse":
            assert r["time_ratio_to_wmmse"] == 1.0 and r["ratio_to_wmmse"] == 1.0
    neural = {(r["method"], r["num_bs_ant"], r["num_ue"]): r for r in rows if r["method"] in ("fm", "papp")}
    for m in ("fm", "papp"):  # the shipped user-space models serve and are scored at every size
        for size in ((64, 4), (8, 4), (8, 2)):
            row = neural[(m, *size)]
            assert row["note"] == "shipped" and 0.8 < row["ratio_to_wmmse"] < 1.1
    zf = [r for r in rows if r["method"] == "zf"]
    assert all(0 < r["ratio_to_wmmse"] <= 1.05 for r in zf)


def test_wifoe_user_sweep_marks_k_outside_training(monkeypatch):
    from mimofm.channels.tr38901 import get_task

    n = get_task("T4").num_bs_ant
    g = torch.Generator().manual_seed(0)
    pos = torch.complex(torch.randn(64, n, generator=g), torch.randn(64, n, generator=g))

    class Fake:
        def split(self, which):
            assert which == "test"
            return pos

    monkeypatch.setattr(sc, "load_task", lambda name, positions: Fake())
    cfg = ScalingConfig(users=[2, 4, 128], methods=["wmmse"], batch=4, repeats=1, wifoe_task="T4")
    rows = sc._wifoe_rows(cfg, None)
    wf = {r["num_ue"]: r for r in rows if r["method"] == "wifoe"}
    assert sorted(wf) == [2, 4]  # K = 128 > N_t is skipped
    assert "outside" in wf[2]["note"] and "outside" not in wf[4]["note"]
    assert all(r["ratio_to_wmmse"] > 0 for r in wf.values())


def test_scaling_needs_wmmse():
    with pytest.raises(MimofmInputError, match="wmmse"):
        scaling(ScalingConfig(methods=["zf"]))
