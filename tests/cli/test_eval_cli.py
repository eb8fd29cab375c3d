import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mimofm.channels.bundled import bundled_dir
from mimofm.cli.main import app

runner = CliRunner()
SITE = str(bundled_dir() / "etoile-mixed.h5")


def _run(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_eval_json_fields_and_physical_order(tmp_path):
    out = tmp_path / "r.json"
    res = _run(
        "eval",
        "--precoder",
        "mrt,zf,zf-wf,rzf,wmmse,dpc",
        "--data",
        SITE,
        "--snr-db",
        "0,10,20",
        "--num-ue",
        "4",
        "--samples",
        "120",
        "--seed",
        "1",
        "--json",
        str(out),
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["config"]["num_ue"] == 4 and doc["config"]["snr_db"] == [0.0, 10.0, 20.0]
    rows = doc["results"]
    assert len(rows) == 6 * 3
    for r in rows:
        for key in (
            "site",
            "precoder",
            "snr_db",
            "snr_median_db",
            "sum_rate_mean",
            "sum_rate_ci95",
            "num_samples",
            "seconds_per_precoder",
        ):
            assert key in r
        assert np.isfinite(r["sum_rate_mean"]) and r["num_samples"] == 120
        assert r.get("samples_above_dpc", 0) == 0
    for snr in (0.0, 10.0, 20.0):
        m = {r["precoder"]: r["sum_rate_mean"] for r in rows if r["snr_db"] == snr}
        assert m["dpc"] >= m["wmmse"] >= m["zf-wf"] >= m["zf"]
        assert abs(next(r["snr_median_db"] for r in rows if r["snr_db"] == snr) - snr) < 1e-6
    wm = [r for r in rows if r["precoder"] == "wmmse"]
    assert all(r["iterations_mean"] >= 1 for r in wm)


def test_samples_are_paired_across_runs(tmp_path):
    """A precoder's numbers do not depend on which other precoders ran beside it."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _run(
        "eval", "--precoder", "zf,rzf", "--data", SITE, "--snr-db", "10", "--samples", "50", "--json", str(a)
    )
    _run("eval", "--precoder", "rzf", "--data", SITE, "--snr-db", "10", "--samples", "50", "--json", str(b))
    ra = next(r for r in json.loads(a.read_text())["results"] if r["precoder"] == "rzf")
    rb = json.loads(b.read_text())["results"][0]
    assert ra["sum_rate_mean"] == rb["sum_rate_mean"]


def test_noise_dbm_convention(tmp_path):
    out = tmp_path / "n.json"
    res = _run(
        "eval",
        "--precoder",
        "zf-wf",
        "--data",
        SITE,
        "--noise-dbm",
        "-94,-84",
        "--samples",
        "30",
        "--json",
        str(out),
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["results"]
    assert rows[0]["noise_dbm"] == -94.0 and rows[0]["sum_rate_mean"] > rows[1]["sum_rate_mean"]
    assert rows[0]["snr_median_db"] - rows[1]["snr_median_db"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--precoder", "zf,magic"], "unknown precoder 'magic'"),
        (["--snr-db", "a,b"], "--snr-db"),
        (["--samples", "1"], "samples"),
        (["--num-ue", "0"], "num_ue"),
        (["--snr-convention", "odd"], "relative_to"),
    ],
)
def test_bad_input_clean_error(args, match):
    base = {"--precoder": "zf", "--snr-db": "10"}
    argv = ["eval", "--data", SITE]
    for k, v in base.items():
        if k not in args:
            argv += [k, v]
    res = runner.invoke(app, argv + args)
    assert res.exit_code == 2
    assert match in res.output and "Traceback" not in res.output


def test_missing_file_and_k_gt_n(tmp_path):
    res = runner.invoke(app, ["eval", "--data", str(tmp_path / "x.npz"), "--snr-db", "0"])
    assert res.exit_code == 2 and "does not exist" in res.output
    small = tmp_path / "small.npz"
    rng = np.random.default_rng(0)
    np.savez(small, H=(rng.normal(size=(30, 2)) + 1j * rng.normal(size=(30, 2))).astype(np.complex64))
    res = runner.invoke(
        app, ["eval", "--data", str(small), "--snr-db", "0", "--precoder", "zf", "--num-ue", "3"]
    )
    assert res.exit_code == 2 and "num_bs_ant" in res.output


def test_eval_rate_targets_mode_with_the_shipped_fm(tmp_path):
    out = tmp_path / "t.json"
    res = _run(
        "eval",
        "--precoder",
        "fm",
        "--rate-targets",
        "random",
        "--betas",
        "0.5",
        "--data",
        SITE,
        "--snr-db",
        "20",
        "--samples",
        "20",
        "--greedy-samples",
        "0",
        "--positions",
        "test",
        "--json",
        str(out),
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["mimofm_result"] == "tradeoff"
    methods = {r["method"] for r in doc["results"]}
    assert methods == {"fm", "qos@fm-rates", "qos@requests"}
    fm = next(r for r in doc["results"] if r["method"] == "fm")
    assert fm["rel_rate_error_mean"] >= 0 and fm["energy_w_mean"] > 0


def test_eval_rate_targets_rejects_wrong_lengths_and_other_precoders():
    res = runner.invoke(
        app, ["eval", "--precoder", "fm", "--rate-targets", "1,2", "--data", SITE, "--snr-db", "20"]
    )
    assert res.exit_code == 2 and "one rate per user" in res.output
    res = runner.invoke(
        app, ["eval", "--precoder", "zf", "--rate-targets", "random", "--data", SITE, "--snr-db", "20"]
    )
    assert res.exit_code == 2 and "--precoder fm" in res.output


def test_checkpoint_needs_exactly_one_neural_precoder(tmp_path):
    res = runner.invoke(
        app,
        [
            "eval",
            "--precoder",
            "zf,wmmse",
            "--checkpoint",
            str(tmp_path / "x"),
            "--data",
            SITE,
            "--snr-db",
            "20",
        ],
    )
    assert res.exit_code == 2 and "exactly one neural precoder" in res.output
    res = runner.invoke(
        app,
        [
            "eval",
            "--precoder",
            "fm,papp-refined",
            "--checkpoint",
            str(tmp_path / "x"),
            "--data",
            SITE,
            "--snr-db",
            "20",
        ],
    )
    assert res.exit_code == 2 and "exactly one neural precoder" in res.output


def test_a_refined_precoder_serves_the_given_checkpoint(tmp_path):
    from mimofm.models.zoo import shipped_checkpoint

    out = tmp_path / "r.json"
    res = runner.invoke(
        app,
        [
            "eval",
            "--precoder",
            "papp,papp-refined",
            "--checkpoint",
            str(shipped_checkpoint("papp")),
            "--data",
            SITE,
            "--snr-db",
            "20",
            "--samples",
            "8",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rate = {r["precoder"]: r["sum_rate_mean"] for r in json.loads(out.read_text())["results"]}
    assert rate["papp-refined"] >= rate["papp"]


def test_imperfect_csi_costs_rate_and_vanishes_at_tiny_error(tmp_path):
    def rates(nmse):
        out = tmp_path / f"r{nmse}.json"
        args = [
            "eval",
            "--precoder",
            "zf,rzf,dpc",
            "--data",
            SITE,
            "--snr-db",
            "20",
            "--samples",
            "60",
            "--json",
            str(out),
        ]
        if nmse is not None:
            args += ["--csi-nmse-db", str(nmse)]
        assert _run(*args).exit_code == 0
        return {r["precoder"]: r["sum_rate_mean"] for r in json.loads(out.read_text())["results"]}

    perfect, tiny, bad = rates(None), rates(-80), rates(-5)
    assert tiny["zf"] == pytest.approx(perfect["zf"], rel=1e-4)
    assert bad["zf"] < 0.8 * perfect["zf"] and bad["rzf"] < perfect["rzf"]
    assert bad["dpc"] == perfect["dpc"]  # the bound keeps perfect CSI


@pytest.mark.parametrize("num_ue", [2, 8])
def test_fm_and_papp_serve_other_users_and_antennas_from_one_checkpoint(tmp_path, num_ue):
    """`mimofm eval --precoder fm,papp,wmmse --num-ue K` on a 32-antenna file: both networks above 0.9 of
    WMMSE and at or above ZF-WF, from the shipped checkpoints."""
    from mimofm.channels.io import load_channels

    cs = load_channels(bundled_dir() / "etoile-mixed.h5")
    f = tmp_path / "h32.npy"
    np.save(f, cs.h[:, :32].numpy())  # raw gains [positions, 32 antennas]
    out = tmp_path / "r.json"
    res = _run(
        "eval", "--precoder", "fm,papp,zf-wf,wmmse", "--data", str(f), "--snr-db", "10",
        "--num-ue", str(num_ue), "--samples", "48", "--json", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {r["precoder"]: r for r in json.loads(out.read_text())["results"]}
    for name in ("fm", "papp"):
        assert rows[name]["ratio_to_wmmse"] > 0.9, (name, rows[name]["ratio_to_wmmse"])
        assert rows[name]["sum_rate_mean"] >= rows["zf-wf"]["sum_rate_mean"]


def test_a_fixed_configuration_checkpoint_is_refused_before_any_work(tmp_path):
    res = runner.invoke(app, ["eval", "--precoder", "wmmse,papp-lite", "--data", SITE, "--snr-db", "10",
                              "--num-ue", "8", "--samples", "8"])  # fmt: skip
    assert res.exit_code == 2
    assert "fixed-configuration checkpoint for 4 users × 64 antennas" in res.output
