"""3GPP TR 38.901 tasks generated for real with Sionna PHY (a few positions each; the file runs in ~20 s)."""

import math

import numpy as np
import pytest
import torch

from mimofm.channels.tr38901 import CHUNK_POSITIONS, GROUPS, TASKS, TaskConfig, generate_task, get_task, tasks
from mimofm.core.validation import MimofmInputError


def _distance(cs):
    """3-D BS–UE distance ``[num_positions]`` (metres)."""
    return (cs.positions - torch.tensor(cs.meta["bs_position_m"], dtype=torch.float64)).norm(dim=-1)


def _gain_db(cs):
    return 10 * torch.log10(cs.h.abs().double().square().sum(-1))


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_generates_finite_nonzero_channels(name):
    cfg = TASKS[name]
    cs = generate_task(cfg, 8, seed=1)
    assert cs.name == name
    assert cs.h.shape == (8, cfg.num_bs_ant) and cs.h.dtype == torch.complex64
    assert cs.los.shape == (8,) and cs.los.dtype == torch.bool
    assert cs.positions.shape == (8, 3) and cs.positions.dtype == torch.float64
    assert bool(torch.isfinite(cs.h).all()) and bool((cs.h.abs().amax(-1) > 0).all())
    if cfg.los is not None:
        assert bool((cs.los == cfg.los).all())
    m = cs.meta
    assert m["pilot_length"] == cfg.pilot_length and m["feedback_bits"] == cfg.feedback_bits
    assert m["task"]["scenario"] == cfg.scenario and m["seed"] == 1 and m["normalized"] is False
    assert m["snr_convention_hint"] == "site-median" and m["sionna_version"].startswith("2.")
    # raw gains are path-loss scale: far below 0 dB per antenna
    assert float(_gain_db(cs).max()) - 10 * math.log10(cfg.num_bs_ant) < -40


def test_catalog_groups_and_the_papers_pilot_feedback_example():
    assert [t.name for t in tasks("pretrain")] == [f"T{i}" for i in range(1, 10)]
    assert [t.name for t in tasks("unseen")] == ["T10", "T11", "T12"]
    assert [t.name for t in tasks("domain_generalization")] == ["G1", "G2", "G3"]
    assert set(GROUPS) == {t.group for t in TASKS.values()}
    pre = tasks("pretrain")
    # domain generalization: a scenario never used in pretraining, arrays/ratios of T1-T3
    for g, t in zip(tasks("domain_generalization"), pre[:3]):
        assert g.scenario not in {p.scenario for p in pre}
        assert (g.rows, g.cols, g.pilot_fraction, g.feedback_fraction) == (
            t.rows,
            t.cols,
            t.pilot_fraction,
            t.feedback_fraction,
        )
    # unseen: a new array (T11) or a new (array, L, B) combination
    seen = {(p.num_bs_ant, p.pilot_fraction, p.feedback_fraction) for p in pre}
    for u in tasks("unseen"):
        assert (u.num_bs_ant, u.pilot_fraction, u.feedback_fraction) not in seen
    assert get_task("T11").num_bs_ant not in {p.num_bs_ant for p in pre}
    # the paper's worked example: T9 has 72 antennas, L = 72·1/4 = 18 pilots, B = 72·2/9 = 16 bits
    t9 = get_task("T9")
    assert (t9.num_bs_ant, t9.pilot_length, t9.feedback_bits) == (72, 18, 16)
    sizes = {t.num_bs_ant for t in TASKS.values()}
    assert min(sizes) == 64 and max(sizes) == 256
    assert all(2.4 <= t.frequency_ghz <= 6.2 and (t.min_ue, t.max_ue) == (3, 8) for t in TASKS.values())
    assert get_task("T7").array == "ula" and (get_task("T7").rows, get_task("T7").cols) == (1, 64)


def test_deterministic_prefix_stable_and_leaves_the_callers_rng_alone():
    cfg = get_task("T4")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = generate_task(cfg, 16, seed=5)
    assert torch.equal(torch.rand(3), expected)  # the caller's torch stream is untouched
    b = generate_task(cfg, 16, seed=5)
    c = generate_task(cfg, 16, seed=6)
    assert torch.equal(a.h, b.h) and torch.equal(a.los, b.los) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.h, c.h) and not torch.equal(a.positions, c.positions)
    # a longer request extends a shorter one (chunked seeding), across a chunk boundary
    long = generate_task(cfg, CHUNK_POSITIONS + 4, seed=5)
    assert torch.equal(long.h[:16], a.h)
    # the default seed is the config's
    assert torch.equal(generate_task(TaskConfig(**{**cfg.__dict__, "seed": 5}), 16).h, a.h)
    # two tasks with the same seed do not share draws
    t1 = generate_task(TaskConfig("x", "umi", False, 8, 8, seed=5), 16)
    t2 = generate_task(TaskConfig("y", "umi", False, 8, 8, seed=5), 16)
    assert not torch.equal(t1.positions, t2.positions)


def test_normalized_unit_gain_per_antenna_and_same_draws_as_raw():
    cfg = get_task("T1")
    raw = generate_task(cfg, 300, seed=2)
    n = generate_task(cfg, 300, seed=2, normalize=True)
    assert n.meta["normalized"] is True and n.meta["snr_convention_hint"] == "none"
    assert float(n.h.abs().double().square().sum(-1).mean() / cfg.num_bs_ant) == pytest.approx(1.0, rel=1e-4)
    # the same realization: each normalized row is its raw row times one positive scalar
    ratio = n.h.to(torch.complex128) / raw.h.to(torch.complex128)
    assert torch.allclose(ratio, ratio[:, :1].real.expand_as(ratio).to(ratio.dtype), rtol=1e-4, atol=0)
    assert bool((ratio[:, 0].real > 0).all()) and torch.equal(n.los, raw.los)
    # the large-scale fading is gone: no distance trend, far smaller spread than the raw gains
    d = np.log10(_distance(raw).numpy())
    A = np.stack([d, np.ones_like(d)], 1)
    slope_raw = np.linalg.lstsq(A, _gain_db(raw).numpy(), rcond=None)[0][0]
    slope_norm = np.linalg.lstsq(A, _gain_db(n).numpy(), rcond=None)[0][0]
    assert slope_raw < -20 and abs(slope_norm) < 8
    assert float(_gain_db(n).std()) < 0.5 * float(_gain_db(raw).std())


def test_raw_gain_falls_with_distance():
    """Path loss: UMi NLOS loses 35.3 dB per decade of distance (38.901 Table 7.4.1-1)."""
    cs = generate_task(get_task("T4"), 256, seed=3)
    d, g = _distance(cs), _gain_db(cs)
    assert float(g[d < d.median()].mean()) > float(g[d >= d.median()].mean()) + 5.0
    A = np.stack([np.log10(d.numpy()), np.ones(len(d))], 1)
    slope = np.linalg.lstsq(A, g.numpy(), rcond=None)[0][0]
    assert -60 < slope < -15


def _steering_phase_error(cs) -> torch.Tensor:
    """|measured − predicted| phase step between neighbouring elements of a horizontal λ/2 ULA, per UE.

    The ULA axis is the panel's y axis rotated by the BS yaw (the down-tilt turns about that same axis),
    so a plane wave leaving towards unit vector r advances by π·(r · axis) per element.
    """
    yaw = cs.meta["bs_orientation_rad"][0]
    bs = torch.tensor(cs.meta["bs_position_m"], dtype=torch.float64)
    r = (cs.positions - bs) / _distance(cs)[:, None]
    axis = torch.tensor([-math.sin(yaw), math.cos(yaw), 0.0], dtype=torch.float64)
    predicted = math.pi * (r @ axis)
    h = cs.h.to(torch.complex128)
    measured = (h[:, 1:] * h[:, :-1].conj()).sum(-1).angle()  # average neighbour correlation's phase
    return (torch.remainder(measured - predicted + math.pi, 2 * math.pi) - math.pi).abs()


def test_los_channel_follows_the_array_steering_vector():
    los = _steering_phase_error(generate_task(get_task("T7"), 128, seed=1))  # RMa LOS, 1x64 ULA
    nlos = _steering_phase_error(
        generate_task(TaskConfig("ctl", "umi", False, 1, 64, "ula", 6.2), 128, seed=1)
    )
    assert float(los.median()) < 0.1 and float((los < 0.2).float().mean()) > 0.6
    assert float(nlos.median()) > 3 * float(los.median())


def test_mixed_los_uses_the_3gpp_probability():
    cs = generate_task(get_task("T8"), 256, seed=3)  # UMi, LOS probability falls with distance
    assert 0.1 < float(cs.los.float().mean()) < 0.9
    d = _distance(cs)
    assert float(d[cs.los].mean()) < float(d[~cs.los].mean())


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(scenario="moon"), "scenario"),
        (dict(array="ula", rows=2, cols=32), "rows"),
        (dict(frequency_ghz=0.0), "frequency_ghz"),
        (dict(frequency_ghz=-3.5), "frequency_ghz"),
        (dict(frequency_ghz=float("nan")), "frequency_ghz"),
        (dict(scenario="rma", frequency_ghz=40.0), "frequency_ghz"),
        (dict(rows=2, cols=2, max_ue=8), "max_ue"),
        (dict(min_ue=5, max_ue=4), "min_ue"),
        (dict(pilot_fraction="abc"), "pilot_fraction"),
        (dict(feedback_fraction="3/2"), "feedback_fraction"),
        (dict(los="yes"), "los"),
        (dict(array="circle"), "array"),
        (dict(group="extra"), "group"),
    ],
)
def test_bad_config_names_the_field(kw, field):
    base = dict(name="x", scenario="umi", los=False, rows=8, cols=8)
    with pytest.raises(MimofmInputError, match=f"`{field}`"):
        TaskConfig(**{**base, **kw})


def test_bad_calls():
    with pytest.raises(MimofmInputError, match="unknown task"):
        get_task("T99")
    with pytest.raises(MimofmInputError, match="num_positions"):
        generate_task(get_task("T4"), 0)
    with pytest.raises(MimofmInputError, match="seed"):
        generate_task(get_task("T4"), 4, seed=-1)
    with pytest.raises(MimofmInputError, match="group"):
        tasks("test")


def _cli():
    """The `mimofm data` sub-app, with every command registered."""
    import mimofm.cli.main  # noqa: F401  (registers the data commands)
    from mimofm.cli.data import data_app

    return data_app


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_cli_writes_a_loadable_file(tmp_path, suffix):
    from typer.testing import CliRunner

    from mimofm.channels.io import load_channels

    out = tmp_path / f"t4{suffix}"
    runner = CliRunner()
    r = runner.invoke(
        _cli(),
        ["tr38901", "--task", "T4", "--positions", "20", "--seed", "3", "--out", str(out), "--normalize"],
    )
    assert r.exit_code == 0, r.output
    cs = load_channels(out)
    ref = generate_task(get_task("T4"), 20, seed=3, normalize=True)
    assert torch.equal(cs.h, ref.h) and torch.equal(cs.los, ref.los)
    assert cs.meta["normalized"] is True and cs.meta["task"]["name"] == "T4"
    if suffix == ".h5":
        assert cs.split is not None and cs.split.shape == (20,)
    r = runner.invoke(_cli(), ["tr38901", "--task", "T4", "--positions", "20", "--out", str(out)])
    assert r.exit_code == 2 and "already exists" in r.output


def test_cli_errors_and_task_list(tmp_path):
    from typer.testing import CliRunner

    runner = CliRunner()
    r = runner.invoke(_cli(), ["tr38901", "--task", "T99", "--out", str(tmp_path / "x.npz")])
    assert r.exit_code == 2 and "unknown task" in r.output
    r = runner.invoke(_cli(), ["tr38901", "--task", "T4", "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "must end in" in r.output
    r = runner.invoke(_cli(), ["tasks"])
    assert r.exit_code == 0 and "G3" in r.output and "UMa" in r.output
