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
    from mimofm.training.task_data import load_task

    for t in ("T4", "T7"):  # the 64-antenna tasks (cheapest to generate)
        load_task(t, POS)
    yield tmp_path_factory.mktemp("runs")
    mp.undo()


@pytest.fixture(scope="module")
def mtl(task_env):
    """A 6-step pretraining run on T4 + T7 (shared by the tests that need a checkpoint; any xdist worker)."""
    out = train(_recipe(), TrainConfig(steps=6, lr=3e-3, ckpt_every=3, log_every=1, out_dir=str(task_env / "mtl")),
                progress=False)
    return out


def _recipe(**kw):
    from mimofm.training.wifoe_recipe import WiFoERecipe

    return WiFoERecipe(**{**dict(tasks=["T4", "T7"], model=TINY, positions=POS, batch_per_task=8,
                                 snr_grid_db=[10.0]), **kw})


def test_task_split_is_by_drop_and_samples_have_the_beamformed_snr(task_env):
    from mimofm.training.task_data import draw_task_samples, load_task

    d = load_task("T4", POS)
    assert d.train.shape == (448, 64) and d.test.shape == (192, 64)
    assert not any(bool((d.test == row).all(-1).any()) for row in d.train[:50])
    h = draw_task_samples(d.train, 2000, 1, 0, 10.0)
    assert float(h.abs().square().sum(-1).mean()) == pytest.approx(10.0, rel=0.15)  # E‖h‖² = SNR


def test_batches_are_deterministic_and_training_runs_and_saves(task_env, mtl):
    rec = _recipe()
    b1, b2 = rec.batch(3), rec.batch(3)
    assert [x[0] for x in b1] == ["T4", "T7"]
    for (_, h1, z1), (_, h2, z2) in zip(b1, b2):
        assert torch.equal(h1, h2) and torch.equal(z1, z2)
        assert 3 <= h1.shape[1] <= 8 and z1.shape[-1] in (8, 12)  # L = N_t/8 (T4), 3N_t/16 (T7)
    out = mtl
    logs = [json.loads(x) for x in (task_env / "mtl" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) and "aux_loss" in r for r in logs if "loss" in r)
    from mimofm.models.loading import load_wifoe

    m = load_wifoe(str(out["checkpoint"]))
    assert set(m.branches) == {"T4", "T7"}
    assert torch.equal(m.trunk[0].ffn.w1, out["model"].trunk[0].ffn.w1)


def test_finetuning_keeps_the_pretrained_trunk_frozen(task_env, mtl):
    from mimofm.adaptation.wifoe import finetune_wifoe
    from mimofm.models.loading import load_wifoe

    stem = str(mtl["checkpoint"])
    pre = load_wifoe(stem)
    res = finetune_wifoe("T7", 60, checkpoint=stem, trunk="pretrained", steps=4, out_dir=str(task_env / "ft"),
                         progress=False, resume=False)
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
    r = CliRunner().invoke(app, ["eval", "--precoder", "wifoe", "--task", "T4", "--checkpoint", str(stem),
                                 "--snr-db", "10", "--samples", "8", "--json", str(out)])
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
    perfect = sum(float(sum_rate(h.to(torch.complex128), wmmse(h).w.to(torch.complex128)).mean())
                  for h in task_draws("T4", 20.0, 8, positions=POS)) / 6
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
    from mimofm.models.loading import load_wifoe

    d = task_env / "ft-val"
    r = CliRunner().invoke(app, ["adapt", "wifoe", "--task", "T7", "--budget", "60", "--steps", "6",
                                 "--val-fraction", "0.2", "--checkpoint", str(mtl["checkpoint"]), "--out-dir", str(d)])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (d / "log.jsonl").read_text().splitlines()]
    vals = {r["step"]: r["eval"]["val_rate@10dB"] for r in log if "eval" in r}
    card = json.loads((d / "best.json").read_text())
    assert len(vals) == 7 and card["meta"]["value"] == max(vals.values()) and vals[card["step"]] == max(vals.values())
    assert list(load_wifoe(str(d / "best"), fresh=True).branches) == ["T7"]  # a wifoe checkpoint of the new branch
    bad = CliRunner().invoke(app, ["adapt", "papp", "--data", "x.h5", "--val-fraction", "0.1"])
    assert bad.exit_code != 0 and "--val-fraction is for wifoe" in bad.output
