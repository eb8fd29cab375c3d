"""wifoe on 3GPP task data through the shared loop: pretraining, fine-tuning with a frozen trunk,
the CEP two-stage schedule, evaluation and the CLI (small generated tasks, a few steps)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mimofm.training.trainer import TrainConfig, train

TINY = dict(d_model=16, num_layers=1, num_heads=2, d_ff=32, num_experts=2, top_k=1, encoder_width=16)
POS = 640  # 10 chunks: 7 train, 3 test


@pytest.fixture(scope="module")
def task_env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MIMOFM_TASK_DIR", str(tmp_path_factory.mktemp("tasks")))
    from mimofm.channels.tasks import load_task

    for t in ("T4", "T7"):  # the 64-antenna tasks (cheapest to generate)
        load_task(t, POS)
    yield tmp_path_factory.mktemp("runs")
    mp.undo()


@pytest.fixture(scope="module")
def mtl(task_env):
    """A 6-step pretraining run on T4 + T7 (shared by the tests that need a checkpoint; any xdist worker)."""
    out = train(
        _recipe(),
        TrainConfig(steps=6, lr=3e-3, ckpt_every=3, log_every=1, out_dir=str(task_env / "mtl")),
        progress=False,
    )
    return out


def _recipe(**kw):
    from mimofm.training.wifoe_recipe import WiFoERecipe

    return WiFoERecipe(
        **{**dict(tasks=["T4", "T7"], model=TINY, positions=POS, batch_per_task=8, snr_grid_db=[10.0]), **kw}
    )


def test_task_split_is_by_drop_and_samples_have_the_beamformed_snr(task_env):
    from mimofm.channels.tasks import draw_task_samples, load_task

    d = load_task("T4", POS)
    assert d.train.shape == (448, 64) and d.test.shape == (192, 64)
    assert not any(bool((d.test == row).all(-1).any()) for row in d.train[:50])
    h = draw_task_samples(d.train, 2000, 1, 0, 10.0)
    assert float(h.abs().square().sum(-1).mean()) == pytest.approx(10.0, rel=0.15)  # E‖h‖² = SNR


def test_load_task_keeps_nothing_and_a_task_cache_reads_each_task_once(task_env):
    from mimofm.channels.tasks import TaskCache, load_task

    a, b = load_task("T4", POS), load_task("T4", POS)
    assert a is not b and torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    cache = TaskCache()
    kept = cache.load("T4", POS)
    assert cache.load("T4", POS) is kept and torch.equal(kept.test, a.test)
    assert TaskCache().load("T4", POS) is not kept  # each cache belongs to its caller


def test_batches_are_deterministic_and_training_runs_and_saves(task_env, mtl):
    rec = _recipe()
    b1, b2 = rec.batch(3), rec.batch(3)
    assert [x[0] for x in b1] == ["T4", "T7"]
    for (_, h1, z1, e1), (_, h2, z2, e2) in zip(b1, b2):
        assert (
            torch.equal(h1, h2) and torch.equal(z1, z2) and float(e1) == float(e2) == 1.0
        )  # full-energy pilots
        assert 3 <= h1.shape[1] <= 8 and z1.shape[-1] in (8, 12)  # L = N_t/8 (T4), 3N_t/16 (T7)
    out = mtl
    logs = [json.loads(x) for x in (task_env / "mtl" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) and "aux_loss" in r for r in logs if "loss" in r)
    from mimofm.models.zoo import load_wifoe

    m = load_wifoe(str(out["checkpoint"]))
    assert set(m.branches) == {"T4", "T7"}
    assert torch.equal(m.trunk[0].ffn.w1, out["model"].trunk[0].ffn.w1)


def test_finetuning_keeps_the_pretrained_trunk_frozen(task_env, mtl):
    from mimofm.adaptation.wifoe import finetune_wifoe
    from mimofm.models.zoo import load_wifoe

    stem = str(mtl["checkpoint"])
    pre = load_wifoe(stem)
    res = finetune_wifoe(
        "T7",
        60,
        checkpoint=stem,
        trunk="pretrained",
        steps=4,
        out_dir=str(task_env / "ft"),
        progress=False,
        resume=False,
    )
    m = res["model"]
    assert list(m.branches) == ["T7"]  # a new branch, not the pretrained T7 one
    for a, b in zip(m.trunk.parameters(), pre.trunk.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(m.branches["T7"].pilot_re_im, pre.branches["T7"].pilot_re_im)


def test_cep_trains_the_estimator_first_then_the_precoder(task_env):
    rec = _recipe(tasks=["T4"], model={**TINY, "feedback": "estimate"}, cep_estimation_steps=3)
    torch.manual_seed(0)
    m = rec.build_model()
    _, s0 = rec.loss(m, rec.batch(0), 0)
    loss, s5 = rec.loss(m, rec.batch(5), 5)
    assert "nmse/T4" in s0 and "rate/T4" not in s0
    assert "rate/T4" in s5
    loss.backward()
    assert m.branches["T4"].encoder[0].weight.grad is None  # the estimator is fixed in stage 2


def test_sample_budget_is_a_fixed_pool(task_env):
    rec = _recipe(tasks=["T4"], sample_budget=12)
    pool = rec.pools()[0]
    assert sum(len(v) for v in pool.sets.values()) == 12
    seen = {tuple(x) for v in pool.sets.values() for x in v.tolist()}
    assert len(seen) <= 12


def test_cli_eval_wifoe_reports_end_to_end_rates(task_env, mtl):
    from mimofm.cli.main import app

    stem = mtl["checkpoint"]
    out = task_env / "eval.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe",
            "--task",
            "T4",
            "--checkpoint",
            str(stem),
            "--snr-db",
            "10",
            "--samples",
            "8",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["task"] == "T4" and 0 < rows[0]["rate"] < rows[0]["wmmse"] * 1.05
    bad = CliRunner().invoke(app, ["eval", "--precoder", "wifoe", "--task", "T11", "--checkpoint", str(stem)])
    assert bad.exit_code != 0 and "adapt wifoe --task T11" in bad.output


def test_lmmse_reference_sits_below_perfect_csi_and_improves_with_snr(task_env):
    from mimofm.core.rates import sum_rate
    from mimofm.evaluation.wifoe_eval import lmmse_wmmse_rate, task_draws
    from mimofm.precoders.wmmse import wmmse

    lo, hi = (lmmse_wmmse_rate("T4", s, 8, positions=POS) for s in (0.0, 20.0))
    assert 0 < lo < hi
    perfect = (
        sum(
            float(sum_rate(h.to(torch.complex128), wmmse(h).w.to(torch.complex128)).mean())
            for h in task_draws("T4", 20.0, 8, positions=POS)
        )
        / 6
    )
    assert hi < perfect


def test_validation_is_held_out_of_the_budget_on_positions_of_its_own(task_env):
    from mimofm.core.validation import MimofmInputError

    rec = _recipe(tasks=["T4"], sample_budget=60, val_fraction=0.1)
    pool, val = rec.pools()[0], rec._val[0]
    n_pos = rec.data()[0].train.shape[0]
    assert sum(len(v) for v in pool.sets.values()) == 54 and sum(len(v) for v in val.sets.values()) == 6
    train_pos = {int(i) for v in pool.sets.values() for i in v.ravel()}
    val_pos = {int(i) for v in val.sets.values() for i in v.ravel()}
    assert not train_pos & val_pos and min(val_pos) >= n_pos - round(0.1 * n_pos)
    torch.manual_seed(0)
    ev = rec.evaluate(rec.build_model())
    assert ev["val_rate@10dB"] == ev["val_rate@10dB/T4"] > 0
    for bad in (dict(val_fraction=0.1), dict(sample_budget=60, val_fraction=1.0)):
        with pytest.raises(MimofmInputError, match="val_fraction"):
            _recipe(tasks=["T4"], **bad)


def test_finetuning_with_validation_keeps_its_best_checkpoint(task_env, mtl):
    from mimofm.cli.main import app
    from mimofm.models.zoo import load_wifoe

    d = task_env / "ft-val"
    r = CliRunner().invoke(
        app,
        [
            "adapt",
            "wifoe",
            "--task",
            "T7",
            "--budget",
            "60",
            "--steps",
            "6",
            "--val-fraction",
            "0.2",
            "--checkpoint",
            str(mtl["checkpoint"]),
            "--out-dir",
            str(d),
        ],
    )
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (d / "log.jsonl").read_text().splitlines()]
    vals = {r["step"]: r["eval"]["val_rate@10dB"] for r in log if "eval" in r}
    card = json.loads((d / "best.json").read_text())
    assert (
        len(vals) == 7
        and card["meta"]["value"] == max(vals.values())
        and vals[card["step"]] == max(vals.values())
    )
    assert list(load_wifoe(str(d / "best")).branches) == ["T7"]  # a wifoe checkpoint of the new branch
    bad = CliRunner().invoke(app, ["adapt", "papp", "--data", "x.h5", "--val-fraction", "0.1"])
    assert bad.exit_code != 0 and "--val-fraction is for wifoe" in bad.output


def test_recipe_operating_point_scales_channels_and_pilots(task_env):
    from mimofm.core.validation import MimofmInputError

    rec = _recipe(tasks=["T4"], snr_convention="per-antenna", pilot_snr_offset_db=-3.0)
    ((_, h, _, e_s),) = rec.batch(0)
    n = 64
    assert float(h.abs().square().sum(-1).mean()) == pytest.approx(n * 10.0, rel=0.15)  # E‖h‖² = N_t·SNR
    assert float(e_s) == pytest.approx(
        10**-0.3
    )  # per-antenna: a unit pilot arrives at the SNR; 3 dB less asked
    fixed = _recipe(tasks=["T4"], pilot_snr_db=20.0)
    ((_, h2, _, e2),) = fixed.batch(0)
    assert float(h2.abs().square().sum(-1).mean()) == pytest.approx(10.0, rel=0.15)  # received: E‖h‖² = SNR
    assert float(e2) * 10.0 / n == pytest.approx(100.0)  # E_s·g/N_t = the stated 20 dB
    assert fixed.operating_point(0.0).resolved_pilot_snr_db(n) == pytest.approx(20.0)
    for bad in (
        dict(snr_convention="beamformed"),
        dict(pilot_snr_db=1.0, pilot_snr_offset_db=0.0),
        dict(loss_norm="mean"),
    ):
        with pytest.raises(MimofmInputError):
            _recipe(tasks=["T4"], **bad)


def test_per_sample_loss_divides_each_rate_by_its_interference_free_rate(task_env):
    from mimofm.core.rates import sum_rate
    from mimofm.precoders.linear import mrt

    h = torch.complex(*torch.randn(2, 5, 3, 8, generator=torch.Generator().manual_seed(0))) * 3
    w = mrt(h)
    plain, r1 = _recipe(tasks=["T4"])._rate_objective(h, w)
    norm, r2 = _recipe(tasks=["T4"], loss_norm="per-sample")._rate_objective(h, w)
    r = sum_rate(h.to(torch.complex128), w.to(torch.complex128))
    ref = torch.log2(1 + h.abs().square().sum(-1).double() / 3).sum(-1)
    assert (
        float(plain) == float(r1) == float(r2) == pytest.approx(float(r.mean()))
    )  # the logged rate is the rate
    assert float(norm) == pytest.approx(float((r / ref).mean()))
    assert 0 < float(norm) < 1  # interference and the power split cost something


def test_pilot_snr_lifts_the_classical_fdd_chains(task_env):
    from mimofm.evaluation.wifoe_eval import classical_rates, codebook_rate, lmmse_wmmse_rate

    lo, dflt, hi = (
        lmmse_wmmse_rate("T4", 16.0, 8, positions=POS, pilot_snr_db=p) for p in (-10.0, None, 30.0)
    )
    # the default is the full-energy pilot, 16 − 18 = −2 dB: between the two stated points
    assert lo < dflt < hi < classical_rates("T4", 16.0, 8, positions=POS)["wmmse"]
    assert lmmse_wmmse_rate(
        "T4", 16.0, 8, positions=POS, pilot_snr_db=16.0 - 10 * np.log10(64)
    ) == pytest.approx(dflt)
    t1_lo = codebook_rate("T7", 16.0, "type1", "wmmse", 8, positions=POS, pilot_snr_db=-10.0)
    t1_hi = codebook_rate("T7", 16.0, "type1", "wmmse", 8, positions=POS, pilot_snr_db=30.0)
    genie = codebook_rate("T7", 16.0, "type1", "wmmse", 8, positions=POS, perfect_ue_csi=True)
    assert t1_lo < t1_hi < genie  # L = 12 < N_t pilots cannot give the UE its whole channel, even at 30 dB
    assert genie < classical_rates("T7", 16.0, 8, positions=POS)["wmmse"]


def test_cli_eval_wifoe_on_a_channel_file_picks_the_branch_and_states_the_pilot_snr(task_env, mtl, tmp_path):
    from mimofm.channels.tasks import load_task
    from mimofm.cli.main import app

    h = load_task("T7", POS).test.numpy()
    np.save(tmp_path / "mine.npy", h)
    out = tmp_path / "r.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe,wmmse",
            "--data",
            str(tmp_path / "mine.npy"),
            "--checkpoint",
            str(mtl["checkpoint"]),
            "--snr-db",
            "10",
            "--pilot-snr-db",
            "10",
            "--samples",
            "16",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = {x["precoder"]: x for x in json.loads(out.read_text())["results"]}
    # 64 antennas and no array metadata: T7 (12 bits) over T4 (8 bits)
    assert rows["wifoe"]["wifoe_branch"] == "T7" and "branch T7" in r.output
    assert rows["wifoe"]["resolved_pilot_snr_db"] == pytest.approx(10.0)
    assert 0 < rows["wifoe"]["ratio_to_wmmse"] < 1.05
    given = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe",
            "--data",
            str(tmp_path / "mine.npy"),
            "--task",
            "T4",
            "--checkpoint",
            str(mtl["checkpoint"]),
            "--snr-db",
            "10",
            "--samples",
            "4",
        ],
    )
    assert given.exit_code == 0 and "branch T4" in given.output, given.output
    np.save(tmp_path / "small.npy", h[:, :32])
    bad = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe",
            "--data",
            str(tmp_path / "small.npy"),
            "--checkpoint",
            str(mtl["checkpoint"]),
            "--snr-db",
            "10",
            "--samples",
            "4",
        ],
    )
    assert (
        bad.exit_code != 0
        and "no branch for 32 antennas" in bad.output
        and "mimofm adapt wifoe" in bad.output
    )
    wrong = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "zf",
            "--data",
            str(tmp_path / "mine.npy"),
            "--snr-db",
            "10",
            "--pilot-snr-db",
            "5",
        ],
    )
    assert wrong.exit_code != 0 and "applies to wifoe" in wrong.output


def test_cli_task_eval_records_the_operating_point(task_env, mtl):
    from mimofm.cli.main import app

    out = task_env / "eval-op.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe",
            "--task",
            "T4",
            "--checkpoint",
            str(mtl["checkpoint"]),
            "--snr-db",
            "10",
            "--snr-convention",
            "per-antenna",
            "--pilot-snr-db",
            "4",
            "--samples",
            "4",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["snr_convention"] == "per-antenna" and row["resolved_pilot_snr_db"] == pytest.approx(4.0)
    assert row["pilot_energy"] == pytest.approx(10**-0.6)  # per-antenna: E_s = pilot SNR / SNR


def test_a_checkpoints_pilot_rule_is_applied_in_its_own_convention(task_env, tmp_path):
    """A model trained with pilot SNR = data SNR + 2 dB (received) evaluated per antenna, on tasks
    and on a file:
    the pilots follow the *received* data SNR + 2 dB, the point it was trained at."""
    from mimofm.channels.tasks import load_task
    from mimofm.cli.main import app
    from mimofm.evaluation.wifoe_eval import cqi_bits_for, rule_pilot_snr

    assert rule_pilot_snr((None, 2.0, "received"), 16.0, 64) == 18.0
    assert rule_pilot_snr((None, 2.0, "per-antenna"), 16.0, 64) == pytest.approx(
        16.0 - 10 * np.log10(64) + 2.0
    )
    assert (
        rule_pilot_snr((5.0, None, "received"), 16.0, 64) == 5.0
        and rule_pilot_snr((None, None, "x"), 1, 64) is None
    )
    assert cqi_bits_for(8, 8, 8) == 2 and cqi_bits_for(8, 12, 24) == 4  # T4: 6 PMI bits leave 2; T1: 4 of 24
    pre = train(
        _recipe(pilot_snr_offset_db=2.0),
        TrainConfig(steps=1, log_every=1, out_dir=str(task_env / "rule")),
        progress=False,
    )
    stem = str(pre["checkpoint"])
    out = tmp_path / "t.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe",
            "--task",
            "T4",
            "--checkpoint",
            stem,
            "--snr-db",
            "-2",
            "--snr-convention",
            "per-antenna",
            "--samples",
            "4",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    row = json.loads(out.read_text())["rows"][0]  # −2 dB per antenna on 64 antennas = 16.06 dB received
    assert row["resolved_pilot_snr_db"] == pytest.approx(-2.0 + 10 * np.log10(64) + 2.0)
    np.save(tmp_path / "f.npy", load_task("T4", POS).test.numpy())
    out = tmp_path / "f.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe",
            "--data",
            str(tmp_path / "f.npy"),
            "--checkpoint",
            stem,
            "--snr-db",
            "-5",
            "--snr-convention",
            "per-antenna",
            "--samples",
            "4",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    row = json.loads(out.read_text())["results"][0]
    assert row["resolved_pilot_snr_db"] == pytest.approx(row["snr_median_db"] + 2.0)
    assert row["snr_median_db"] == pytest.approx(-5.0 + 10 * np.log10(64))


def test_finetuning_inherits_the_checkpoints_pilot_rule(task_env):
    from mimofm.adaptation.wifoe import finetune_wifoe

    pre = train(
        _recipe(pilot_snr_offset_db=2.0, snr_convention="per-antenna"),
        TrainConfig(steps=2, log_every=1, out_dir=str(task_env / "op")),
        progress=False,
    )
    res = finetune_wifoe(
        "T7",
        40,
        checkpoint=str(pre["checkpoint"]),
        steps=2,
        out_dir=str(task_env / "op-ft"),
        progress=False,
        resume=False,
    )
    card = json.loads(res["checkpoint"].with_suffix(".json").read_text())["config"]["recipe"]
    assert card["pilot_snr_offset_db"] == 2.0 and card["snr_convention"] == "per-antenna"
    assert card["snr_grid_db"] == [10.0] and card["eval_snr_db"] == 10.0 and card["loss_norm"] == "none"
    from mimofm.core.validation import MimofmInputError

    with pytest.raises(MimofmInputError, match="snr_grid_db"):
        finetune_wifoe(
            "T7",
            40,
            checkpoint=str(pre["checkpoint"]),
            steps=1,
            out_dir=str(task_env / "op-ft3"),
            progress=False,
            snr_convention="received",
        )
    res2 = finetune_wifoe(
        "T7",
        40,
        checkpoint=str(pre["checkpoint"]),
        steps=2,
        out_dir=str(task_env / "op-ft2"),
        progress=False,
        resume=False,
        pilot_snr_db=5.0,
    )
    card2 = json.loads(res2["checkpoint"].with_suffix(".json").read_text())["config"]["recipe"]
    assert card2["pilot_snr_db"] == 5.0 and card2["pilot_snr_offset_db"] is None


def test_a_3gpp_file_in_another_scenario_gets_the_branch_of_its_array(task_env, mtl, tmp_path):
    """``mimofm data tr38901 --scenario uma`` makes T4's 8×8 array in UMa; wifoe serves it with T4
    (its array),
    not with T7 (64 antennas too, more feedback bits, a ULA)."""
    from mimofm.channels.io import load_channels
    from mimofm.cli.main import app

    f = tmp_path / "uma64.h5"
    r = CliRunner().invoke(
        app,
        [
            "data",
            "tr38901",
            "--task",
            "T4",
            "--scenario",
            "uma",
            "--positions",
            "64",
            "--seed",
            "3",
            "--out",
            str(f),
        ],
    )
    assert r.exit_code == 0, r.output
    cs = load_channels(f)
    assert cs.name == "T4-uma" and cs.meta["scenario"] == "uma" and cs.num_bs_ant == 64
    out = tmp_path / "r.json"
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--precoder",
            "wifoe,zf",
            "--data",
            str(f),
            "--checkpoint",
            str(mtl["checkpoint"]),
            "--snr-db",
            "10",
            "--samples",
            "4",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    row = next(x for x in json.loads(out.read_text())["results"] if x["precoder"] == "wifoe")
    assert row["wifoe_branch"] == "T4" and row["pilot_energy"] == 1.0  # no --pilot-snr-db: full-energy pilots
    bad = CliRunner().invoke(
        app, ["data", "tr38901", "--task", "T4", "--los", "los", "--out", str(tmp_path / "x.h5")]
    )
    assert bad.exit_code != 0 and "--los goes with --scenario" in bad.output
