import json

import pytest
from typer.testing import CliRunner

from mimofm.cli.main import app

runner = CliRunner()
pytest.importorskip("onnxruntime")


def test_export_onnx_of_the_shipped_fm_reports_parity(tmp_path):
    out = tmp_path / "fm.onnx"
    res = runner.invoke(app, ["export", "onnx", "--precoder", "fm", "--out", str(out), "--check-samples", "16"])
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
    assert {r["method"] for r in doc["rows"]} == {"zf", "wmmse", "fm"} and {r["batch"] for r in doc["rows"]} == {1, 64}
