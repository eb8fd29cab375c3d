import json

import pytest
from typer.testing import CliRunner

from mimofm.cli.main import app

runner = CliRunner()
pytest.importorskip("onnxruntime")


def test_export_onnx_of_the_shipped_fm_reports_parity(tmp_path):
    out = tmp_path / "fm.onnx"
    res = runner.invoke(
        app, ["export", "onnx", "--precoder", "fm", "--out", str(out), "--check-samples", "16"]
    )
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1e6 and "max |ΔW|" in res.output


def test_export_refuses_unknown_precoders(tmp_path):
    res = runner.invoke(app, ["export", "onnx", "--precoder", "zf", "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "implemented for fm" in res.output


def test_bench_latency_quick_json(tmp_path):
    out = tmp_path / "lat.json"
    res = runner.invoke(app, ["bench", "latency", "--methods", "zf,wmmse,fm", "--quick", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert {r["method"] for r in doc["rows"]} == {"zf", "wmmse", "fm"} and {
        r["batch"] for r in doc["rows"]
    } == {1, 64}


def test_bench_cost_and_scaling_cli(tmp_path):
    res = runner.invoke(app, ["bench", "cost", "--json", str(tmp_path / "cost.json")])
    assert res.exit_code == 0, res.output
    assert [r["name"] for r in json.loads((tmp_path / "cost.json").read_text())["rows"]][:2] == ["fm", "papp"]
    res = runner.invoke(
        app,
        [
            "bench",
            "scaling",
            "--antennas",
            "8",
            "--users",
            "2",
            "--users-fixed",
            "2",
            "--antennas-fixed",
            "8",
            "--methods",
            "zf,wmmse",
            "--batch",
            "4",
            "--repeats",
            "1",
            "--wifoe-task",
            "",
            "--json",
            str(tmp_path / "sc.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "sc.json").read_text())["rows"]
    assert {(r["sweep"], r["method"]) for r in rows} == {
        ("N_T", "zf"),
        ("N_T", "wmmse"),
        ("N_U", "zf"),
        ("N_U", "wmmse"),
    }
    res = runner.invoke(app, ["bench", "latency", "--threads", "-1"])
    assert res.exit_code == 2 and "--threads" in res.output
