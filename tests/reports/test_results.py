"""`mimofm report RESULT.json...`: every eval/bench result kind renders into tables, captioned plots and one
standalone HTML page; inputs it cannot render are named."""

from __future__ import annotations

import base64
import re

import pytest
from typer.testing import CliRunner

import mimofm
from mimofm.cli.main import app
from mimofm.reports.results import result_kind
from tests.reports import results_docs as docs


def _report(args, out):
    r = CliRunner().invoke(app, ["report", *map(str, args), "--out", str(out)])
    return r


def test_kind_is_told_from_the_keys():
    assert result_kind(docs.eval_doc()) == "eval"
    untagged = docs.eval_doc()
    del untagged["mimofm_result"]
    assert result_kind(untagged) == "eval"  # an older eval JSON without the tag
    assert result_kind(docs.tradeoff_doc()) == "tradeoff"
    assert result_kind(docs.wifoe_doc()) == "wifoe"
    assert result_kind(docs.latency_doc()) == "latency"
    assert result_kind(docs.crossover_doc()) == "crossover"
    assert result_kind(docs.classical_doc()) == "classical"
    scaling = {
        "rows": [{"sweep": "N_T", "method": "zf", "num_bs_ant": 16, "num_ue": 4, "time_ratio_to_wmmse": 0.1}]
    }
    assert result_kind(scaling) == "scaling"
    assert result_kind({"rows": []}) is None and result_kind([1, 2]) is None and result_kind({"a": 1}) is None


def test_report_of_eval_and_bench_results(tmp_path):
    files = [
        docs.write(tmp_path, "eval", docs.eval_doc()),
        docs.write(tmp_path, "trade", docs.tradeoff_doc()),
        docs.write(tmp_path, "wifoe", docs.wifoe_doc()),
        docs.write(tmp_path, "latency", docs.latency_doc()),
        docs.write(tmp_path, "crossover", docs.crossover_doc()),
        docs.write(tmp_path, "classical", docs.classical_doc()),
    ]
    out = tmp_path / "rep"
    r = _report(files, out)
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    # one section per file, each naming the command that writes such a file
    for head in (
        "## eval.json: sum rate of each precoder",
        "## trade.json: fm rate-target mode against QoS power minimization",
        "## wifoe.json: wifoe end to end on 3GPP tasks",
        "## latency.json: time per precoder",
        "## crossover.json: WMMSE's two forms: where they cross",
        "## classical.json: classical precoders beside NumPy and Sionna",
    ):
        assert head in md
    assert "(written by `mimofm eval --rate-targets --json`)" in md
    # eval: the sum-rate table, and the ratio table (÷ WMMSE, mean over the sites) with the time per precoder
    assert "| site | SNR | zf | wmmse | fm | dpc |" in md
    assert "| s1 | 10 dB | 2.00 | 4.00 | 3.60 | 4.40 |" in md
    assert "| fm | 0.900 | 0.900 | 0.900 | 100.0 |" in md and "| dpc | 1.100 | 1.100 | 1.100 | 1000.0 |" in md
    # fm's rate errors come with what they mean
    assert "|r_u − R*_u| / max(R*_u, 0.1)" in md
    assert "| s1 | 20 dB | 0.2 | 2.00 | 2.10 | 4.2% | 3.1% | 30.0 | 40.0 | 0.450 | 0.900 | 97% |" in md
    # wifoe: beside perfect-CSI baselines, with its pilot SNR
    assert "| T4 | T4 | 10 dB | 16.0 dB | 4.00 | 3.50 | 5.00 | 0.800 |" in md
    assert (
        "| zf | 1 | 20.0 | 30.0 | 0.050 | 50,000 | 36.2% |" in md
        and "| zf | 64 | 2.5 | – | 0.050 | 400,000 | 289.9% |" in md
    )
    assert "| 64 | 8 | 640.0 | 1920.0 | 3.00 |" in md
    assert "| zf | single | mimofm | 250,000 | 2.50 |  | 5.5000 |" in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "crossover_crossover.png",
        "eval_quality_vs_time.png",
        "eval_sum_rate.png",
        "latency_latency.png",
        "trade_energy.png",
        "wifoe_wifoe.png",
    ]
    assert all((out / p).stat().st_size > 5000 for p in pngs)
    page = (out / "report.html").read_text()
    assert "<title>mimofm report</title>" in page and f"mimofm {mimofm.__version__}" in page
    assert len(re.findall(r"<h2 id=", page)) == 6 and '<nav aria-label="sections">' in page
    # one file: every figure embedded as a PNG data URI, numbered and captioned
    srcs = re.findall(r'<img alt="[^"]*" src="([^"]*)"', page)
    assert len(srcs) == len(pngs) and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count("<figcaption>") == 6 and "<b>Figure 6.</b>" in page
    assert (
        "bottom row: each precoder&#x27;s sum rate ÷ WMMSE&#x27;s" in page
        or "bottom row: each precoder's sum rate ÷ WMMSE's" in page
    )


def test_ratio_panel_falls_back_to_dpc_without_wmmse(tmp_path):
    doc = docs.eval_doc()
    doc["results"] = [r for r in doc["results"] if r["precoder"] != "wmmse"]
    out = tmp_path / "rep"
    r = _report([docs.write(tmp_path, "nowmmse", doc)], out)
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "**Sum rate ÷ DPC**" in md and "| fm | 0.818 | 0.818 | 0.818 | 100.0 |" in md
    assert [p.name for p in out.glob("*.png")] == [
        "nowmmse_sum_rate.png"
    ]  # no WMMSE: no quality-vs-time plot


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"hello": 1}', "not a result mimofm can render (top level: hello)"),
        ("[1, 2]", "not a result mimofm can render (top level: list)"),
        ("{not json", "not a JSON file"),
    ],
)
def test_an_unrecognised_file_is_named_and_nothing_is_written(tmp_path, content, message):
    good = docs.write(tmp_path, "eval", docs.eval_doc())
    bad = tmp_path / "mine.json"
    bad.write_text(content)
    out = tmp_path / "rep"
    r = _report([good, bad], out)
    assert r.exit_code == 2
    assert f"{bad}" in r.output and message in r.output
    assert "`mimofm bench latency --json`" in r.output or message == "not a JSON file"
    assert not out.exists()


def test_a_missing_result_file_is_named(tmp_path):
    r = _report([tmp_path / "nope.json"], tmp_path / "rep")
    assert r.exit_code == 2 and "nope.json: no such result file" in r.output
    assert not (tmp_path / "rep").exists()
