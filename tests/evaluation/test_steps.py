"""The ``steps(done, total)`` callbacks of the long evaluations and benchmarks (the CLI's bars with a time
estimate): each counts up by one from 0 to a total known before the first unit, and reaches it."""

import torch

from mimofm.channels.bundled import bundled_sites
from mimofm.evaluation.classical_speed import (
    ClassicalSpeedConfig,
    CrossoverConfig,
    classical_speed,
    classical_speed_steps,
    form_crossover,
)
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.evaluation.latency import LatencyConfig, latency
from mimofm.evaluation.scaling import ScalingConfig, scaling


def _recorder():
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def _counts_up_to(calls: list[tuple[int, int]], total: int) -> None:
    assert calls == [(i, total) for i in range(total + 1)]  # (0, total) first: the bar's size


def test_eval_counts_sets_times_snr_points_times_precoders():
    calls, steps = _recorder()
    messages = []
    cfg = EvalConfig(precoders=["zf", "mrt", "dpc"], snr_db=[0.0, 10.0], samples=4, seed=0)
    evaluate_sets(bundled_sites()[:2], cfg, messages.append, steps=steps)
    _counts_up_to(calls, 2 * 2 * 3)
    assert len(messages) == 12  # the old message callback is unchanged
    evaluate_sets(bundled_sites()[:1], cfg)  # no callbacks: as before


def test_eval_counts_wifoe_at_every_point():
    calls, steps = _recorder()
    cfg = EvalConfig(precoders=["zf", "wifoe"], snr_db=[10.0], samples=2, seed=0, num_ue=4)
    evaluate_sets(bundled_sites()[:1], cfg, steps=steps)
    _counts_up_to(calls, 2)


def test_latency_scaling_and_the_classical_benchmarks_count_every_timing():
    calls, steps = _recorder()
    latency(
        LatencyConfig(methods=["zf", "wmmse"], num_ue=2, num_bs_ant=8, batches=[1, 4], repeats=1), steps=steps
    )
    _counts_up_to(calls, 4)

    calls, steps = _recorder()
    cfg = ScalingConfig(
        antennas=[8, 16],
        users=[2, 16],
        users_fixed=4,
        antennas_fixed=8,
        methods=["zf", "wmmse"],
        batch=2,
        repeats=1,
        wifoe_task=None,
    )  # N_T: 8, 16; N_U: 2 (16 > 8 antennas is skipped) -> 3 points × 2 methods
    scaling(cfg, steps=steps)
    _counts_up_to(calls, 6)

    calls, steps = _recorder()
    form_crossover(
        CrossoverConfig(antennas=[4, 8], users=[2, 8], iterations=1, repeats=1, max_batch=2), steps=steps
    )
    _counts_up_to(calls, 2 * 3)  # (4, 2), (8, 2), (8, 8); two forms each

    calls, steps = _recorder()
    h = torch.randn(2, 2, 8, dtype=torch.complex64)
    cfg = ClassicalSpeedConfig(methods=["zf", "mrt"], precisions=["single", "double"], repeats=1)
    refs = {"other": {"zf": lambda x: x.mH}}  # has one of the two methods (MRT-like output)
    classical_speed(h, cfg, refs, steps=steps)
    assert classical_speed_steps(cfg, refs) == 2 * (2 + 1)
    _counts_up_to(calls, 6)
