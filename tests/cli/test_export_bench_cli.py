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
    text = " ".join(res.output.split())  # Rich may wrap the line
    assert out.stat().st_size > 1e6 and "max |ΔW| " in text and "(maximum sum rate)" in text


def test_export_refuses_unknown_precoders(tmp_path):
    res = runner.invoke(app, ["export", "onnx", "--precoder", "zf", "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "implemented for fm" in res.output
    res = runner.invoke(app, ["export", "onnx", "--precoder", "papp", "--factorised", "--out", "x.onnx"])
    assert res.exit_code == 2 and "`--factorised` is for fm" in res.output


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


def test_bench_classical_side_by_side_json(tmp_path):
    out = tmp_path / "classical.json"
    res = runner.invoke(
        app,
        [
            "bench",
            "classical",
            "--methods",
            "zf-wf,rzf-eq,wmmse-3,dpc",
            "--batch",
            "32",
            "--repeats",
            "1",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    rows = {(r["method"], r["implementation"], r["precision"]): r for r in doc["rows"]}
    for prec in ("single", "double"):
        # the same algorithm on the same channels gives the same rate in every implementation
        for method, impl in (
            ("zf-wf", "numpy"),
            ("rzf-eq", "numpy"),
            ("wmmse-3", "numpy"),
            ("rzf-eq", "sionna"),
        ):
            ours, theirs = rows[(method, "mimofm", prec)], rows[(method, impl, prec)]
            assert abs(ours["sum_rate_mean"] - theirs["sum_rate_mean"]) < 1e-3 * theirs["sum_rate_mean"]
            assert ours["speedup_vs"][impl] > 0 and ours["batch"] == 32
        # the bound is above every precoder
        assert (
            rows[("dpc", "mimofm", prec)]["sum_rate_mean"]
            > rows[("wmmse-3", "mimofm", prec)]["sum_rate_mean"]
        )
    assert doc["machine"]["threads"] == 1 and "test positions" in doc["data"]


def test_bench_classical_refuses_unknown_methods_and_missing_references(tmp_path):
    res = runner.invoke(app, ["bench", "classical", "--methods", "zf,bogus"])
    assert res.exit_code == 2 and "unknown method 'bogus'" in res.output
    res = runner.invoke(app, ["bench", "classical", "--reference", str(tmp_path / "none.py")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_bench_crossover_quick(tmp_path):
    out, png = tmp_path / "x.json", tmp_path / "x.png"
    res = runner.invoke(app, ["bench", "crossover", "--quick", "--json", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["rows"]
    assert {(r["num_bs_ant"], r["num_ue"], r["form"]) for r in rows} == {
        (n, k, f) for n in (16, 64) for k in (2, 8) for f in ("user", "antenna")
    }
    assert png.read_bytes()[:4] == b"\x89PNG"
