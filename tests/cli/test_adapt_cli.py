"""`mimofm adapt fm|papp` on a single user file: K from --num-ue, N_t from the file, a split made when the
file has none, the before/after table on stdout (plain text: the runner's stdout is not a terminal)."""

import json

from typer.testing import CliRunner

from mimofm.cli.adapt import report_lines
from mimofm.cli.main import app
from mimofm.models.papp import PaPP, PaPPConfig
from mimofm.models.zoo import shipped_checkpoint
from mimofm.training.checkpoint import save_checkpoint
from tests.models.toys import PAPP_TINY, tiny_user_fm, user_file

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["adapt", *map(str, args)], catch_exceptions=False)


def test_report_lines_are_an_aligned_plain_table():
    report = {
        "zero-shot": {"ratio_to_wmmse": 0.9123, "rel_rate_error": 0.1234, "energy_ratio": 0.6},
        "adapted": {"ratio_to_wmmse": 0.95, "rel_rate_error": None, "energy_ratio": None},
    }
    assert report_lines(report, "t")[:-1] == [
        "t",
        "           ratio to WMMSE  rate error  energy",
        "zero-shot           0.912       12.3%   0.600",
        "adapted             0.950           —       —",
    ]


def test_adapt_fm_on_one_user_file_prints_the_table_and_records_it(tmp_path):
    ckpt = tiny_user_fm(tmp_path)
    data = user_file(tmp_path / "local.npz", 5)
    out = tmp_path / "run"
    res = _run(
        "fm", "--data", data, "--shots", 8, "--num-ue", 2, "--top-n", 2, "--checkpoint", ckpt,
        "--steps", 3, "--out-dir", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "adaptation.json").read_text())
    assert (out / "split.npy").exists() and doc["split"]["source"] == "made"
    assert "has no position split: made one" in res.output and "similar head" in res.output
    lines = res.output.splitlines()
    head = next(i for i, line in enumerate(lines) if "ratio to WMMSE" in line)
    for row, line in zip(("zero-shot", "adapted"), lines[head + 1 : head + 3]):
        r = doc["report"][row]
        assert line.split() == [
            row,
            f"{r['ratio_to_wmmse']:.3f}",
            f"{r['rel_rate_error']:.1%}",
            f"{r['energy_ratio']:.3f}",
        ]
    assert "{" not in res.output  # no raw dicts
    assert f"numbers in {out / 'adaptation.json'}" in " ".join(res.output.split())


def test_adapt_papp_on_one_user_file_and_fixed_configuration_errors(tmp_path):
    cfg = PaPPConfig(input_form="user", **PAPP_TINY)
    save_checkpoint(
        tmp_path / "papp", PaPP(cfg), config={"recipe_name": "papp"}, meta={"architecture": cfg.to_dict()}
    )
    data = user_file(tmp_path / "local.npz", 6, ant=8)
    out = tmp_path / "run"
    res = _run(
        "papp", "--data", data, "--shots", 10, "--num-ue", 3, "--checkpoint", tmp_path / "papp",
        "--steps", 2, "--out-dir", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "adaptation.json").read_text())
    assert doc["num_ue"] == 3 and doc["num_bs_ant"] == 8 and doc["split"]["source"] == "made"
    row = next(line for line in res.output.splitlines() if line.startswith("adapted"))
    assert row.split() == ["adapted", f"{doc['report']['adapted']['ratio_to_wmmse']:.3f}", "—", "—"]
    # papp-lite is a fixed-configuration checkpoint (4 users × 64 antennas)
    lite = str(shipped_checkpoint("papp-lite"))
    res = _run(
        "papp",
        "--data",
        data,
        "--shots",
        10,
        "--num-ue",
        3,
        "--checkpoint",
        lite,
        "--out-dir",
        tmp_path / "x",
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "fixed-configuration (antenna-form) checkpoint for 4 users × 64 antennas" in " ".join(
        res.output.split()
    )
    assert not (tmp_path / "x").exists()


def test_eval_scores_the_positions_an_adaptation_held_out(tmp_path):
    import numpy as np

    data = user_file(tmp_path / "local.npz", 7, n=60)
    codes = np.zeros(60, dtype=np.int8)
    codes[40:50], codes[50:] = 1, 2
    np.save(tmp_path / "split.npy", codes)
    base = ["eval", "--data", str(data), "--var", "H", "--precoder", "zf", "--num-ue", "2", "--samples", "8"]
    res = runner.invoke(app, [*base, "--positions", "test", "--snr-db", "10"])
    assert res.exit_code == 2 and "needs a position split" in res.output
    out = tmp_path / "r.json"
    res = runner.invoke(
        app,
        [
            *base,
            "--positions",
            "test",
            "--snr-db",
            "10",
            "--split",
            str(tmp_path / "split.npy"),
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["results"][0]["num_samples"] == 8
    np.save(tmp_path / "short.npy", codes[:50])
    res = runner.invoke(app, [*base, "--snr-db", "10", "--split", str(tmp_path / "short.npy")])
    assert res.exit_code == 2 and "is not a split of" in res.output
