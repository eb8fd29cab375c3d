import pytest

from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.latency import NEEDED_PER_SECOND, LatencyConfig, latency


def test_latency_rows_are_consistent_ratios_to_wmmse():
    res = latency(LatencyConfig(methods=["zf", "wmmse"], num_ue=2, num_bs_ant=8, batches=[1, 4], repeats=1))
    rows = res["rows"]
    assert [(r["method"], r["batch"]) for r in rows] == [("zf", 1), ("wmmse", 1), ("zf", 4), ("wmmse", 4)]
    for r in rows:
        assert r["seconds_per_precoder"] > 0
        assert r["precoders_per_second"] == pytest.approx(1 / r["seconds_per_precoder"])
        assert r["budget_fraction"] == pytest.approx(r["precoders_per_second"] / NEEDED_PER_SECOND)
    assert all(r["ratio_to_wmmse"] == 1.0 for r in rows if r["method"] == "wmmse")
    ops = res["operations"]  # mimofm's count and PyTorch's matmul FLOPs per precoder
    assert ops["zf"]["multiplications"] > 0 and ops["wmmse"]["multiplications"] > ops["zf"]["multiplications"]
    assert ops["wmmse"]["measured_flops_matmul_only"] > 0


def test_latency_needs_wmmse_and_refuses_bounds():
    with pytest.raises(MimofmInputError, match="include wmmse"):
        latency(LatencyConfig(methods=["zf"]))
    with pytest.raises(MimofmInputError, match="bound"):
        latency(LatencyConfig(methods=["dpc", "wmmse"], num_ue=2, num_bs_ant=8, batches=[1], repeats=1))


def test_wifoe_is_timed_end_to_end_on_its_task_with_that_many_antennas():
    res = latency(
        LatencyConfig(
            methods=["wmmse", "wifoe", "wifoe-onnx"],
            num_ue=4,
            num_bs_ant=64,
            batches=[2],
            repeats=1,
            threads=1,
        )
    )
    assert [r["method"] for r in res["rows"]] == ["wmmse", "wifoe", "wifoe-onnx"]
    assert all(r["seconds_per_precoder"] > 0 for r in res["rows"]) and res["machine"]["threads"] == 1
    with pytest.raises(MimofmInputError, match="no task with 8 antennas"):
        latency(LatencyConfig(methods=["wmmse", "wifoe"], num_ue=2, num_bs_ant=8, batches=[1], repeats=1))
