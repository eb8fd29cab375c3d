"""Output that works in pipes and notebooks: full-width tables off a terminal, `--format
table|csv|markdown|json`, `mimofm --version`, shell completion."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

import mimofm
from mimofm.channels.bundled import bundled_dir
from mimofm.channels.catalog import CATALOG
from mimofm.channels.io import load_channels
from mimofm.cli import _common
from mimofm.cli.main import app

runner = CliRunner()  # no TTY: what `mimofm ... | cat` sees
SITE = str(bundled_dir() / "etoile-mixed.h5")


@pytest.fixture
def plain_env(monkeypatch):
    """A fresh stdout console with no width or colour forced by the environment (COLUMNS, FORCE_COLOR)."""
    for var in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_common, "console", _common.make_console())


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _md_rows(text: str) -> list[list[str]]:
    """The cells of a Markdown pipe table; asserts every line is a row of the header's width."""
    lines = text.strip().splitlines()
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[:1] + lines[2:]), text
    assert lines[1] == "|" + "---|" * (lines[0].count(" | ") + 1), text  # the header separator line
    rows = [[c.strip() for c in line[2:-2].split(" | ")] for line in lines[:1] + lines[2:]]
    assert len({len(r) for r in rows}) == 1, text
    return rows


def test_console_is_wide_off_a_terminal_and_keeps_an_explicit_width(plain_env, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    c = _common.make_console()
    assert not c.is_terminal and c.width == _common.PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "97")
    assert _common.make_console().width == 97  # the user's choice wins


def test_data_sites_piped_shows_every_full_site_name(plain_env, tmp_path):
    res = _run("data", "sites", "--site-dir", tmp_path)
    assert res.exit_code == 0, res.output
    assert "…" not in res.stdout  # nothing cut to fit 80 columns
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in res.stdout.splitlines() if "│" in line]
    by_site = {r[0]: r for r in rows}
    for name, spec in CATALOG.items():
        assert name in by_site, f"{name} missing:\n{res.stdout}"
        assert by_site[name][1:3] == [spec.scene, spec.split]
    assert by_site["etoile-mixed"][6] == "bundled"


def test_data_sites_csv_markdown_and_json_agree(tmp_path):
    cs = load_channels(SITE)
    res = _run("data", "sites", "--site-dir", tmp_path, "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["site"] for r in rows] == list(CATALOG)
    etoile = next(r for r in rows if r["site"] == "etoile-mixed")
    assert etoile["file"] == "bundled" and int(etoile["positions"]) == cs.num_positions
    assert float(etoile["los_ratio"]) == pytest.approx(float(cs.los.float().mean()))
    assert float(etoile["noise_dbm"]) == -94.0 and etoile["los_ratio_is_candidate"] == "false"

    md = _md_rows(_run("data", "sites", "--site-dir", tmp_path, "--format", "markdown").stdout)
    assert md[0][0] == "site" and [r[0] for r in md[1:]] == list(CATALOG)

    doc = json.loads(_run("data", "sites", "--site-dir", tmp_path, "--format", "json").stdout)
    assert [d["site"] for d in doc] == list(CATALOG)
    assert next(d for d in doc if d["site"] == "etoile-mixed")["positions"] == cs.num_positions


def test_eval_csv_markdown_and_json_carry_the_results(tmp_path):
    args = ["eval", "--precoder", "zf,wmmse", "--data", SITE, "--snr-db", "0,10", "--samples", "16"]
    out = tmp_path / "r.json"
    res = _run(*args, "--format", "csv", "--json", out)
    assert res.exit_code == 0, res.output
    assert "results written" in res.stderr and "results written" not in res.stdout
    doc = json.loads(out.read_text())
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 4 and len(doc["results"]) == 4  # 2 SNR points × 2 precoders
    for col in ("site", "precoder", "snr_db", "sum_rate_mean", "sum_rate_ci95", "num_samples"):
        assert col in rows[0]
    for row, r in zip(rows, doc["results"]):
        assert (row["site"], row["precoder"]) == ("etoile-mixed", r["precoder"])
        assert float(row["snr_db"]) == r["snr_db"] and int(row["num_samples"]) == 16
        assert float(row["sum_rate_mean"]) == r["sum_rate_mean"]  # full precision
    wm = next(row for row in rows if row["precoder"] == "wmmse")
    zf = next(row for row in rows if row["precoder"] == "zf" and row["snr_db"] == wm["snr_db"])
    assert wm["ratio_to_wmmse"] == "" and 0 < float(zf["ratio_to_wmmse"]) <= 1 + 1e-9

    md = _md_rows(_run(*args, "--format", "markdown").stdout)
    assert md[0] == ["site", "SNR", "zf", "wmmse"] and len(md) == 3
    means = {(r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in doc["results"]}
    for row, snr in zip(md[1:], (0.0, 10.0)):
        assert row[:2] == ["etoile-mixed", f"{snr:g} dB"]
        assert row[2:] == [f"{means[snr, 'zf']:.2f}", f"{means[snr, 'wmmse']:.2f}"]

    res = _run(*args, "--format", "json")
    untimed = lambda rows: [{k: v for k, v in r.items() if k != "seconds_per_precoder"} for r in rows]  # noqa: E731
    assert untimed(json.loads(res.stdout)["results"]) == untimed(doc["results"])  # same seed, same samples


def test_markdown_escapes_pipes_and_csv_writes_records():
    listing = _common.Listing(header=["a", "err|ok"], rows=[["x|y", "1"]])
    assert listing.markdown().splitlines() == ["| a | err\\|ok |", "|---|---|", "| x\\|y | 1 |"]
    text = _common.records_csv([{"a": 1.25, "b": None, "c": True}, {"a": 2, "d": [1, 2]}])
    assert list(csv.reader(io.StringIO(text))) == [["a", "b", "c"], ["1.25", "", "true"], ["2", "", ""]]


def test_data_info_formats(tmp_path):
    cs = load_channels(SITE)
    res = _run("data", "info", SITE, "--format", "csv")
    assert res.exit_code == 0, res.output
    (row,) = list(csv.DictReader(io.StringIO(res.stdout)))
    assert int(row["num_positions"]) == cs.num_positions and int(row["num_bs_ant"]) == cs.num_bs_ant
    assert row["checksum_ok"] == "true"
    md = _md_rows(_run("data", "info", SITE, "--format", "markdown").stdout)
    assert md[0] == ["field", "value"] and ["positions", str(cs.num_positions)] in md
    as_json = json.loads(_run("data", "info", SITE, "--json").stdout)
    assert json.loads(_run("data", "info", SITE, "--format", "json").stdout) == as_json
    assert as_json["num_positions"] == cs.num_positions
    res = _run("data", "info", SITE, "--json", "--format", "csv")
    assert res.exit_code == 2 and "cannot go with --format csv" in res.output


def test_bench_cost_csv_has_one_line_per_checkpoint():
    from mimofm.evaluation.training_cost import training_cost

    expected = training_cost()
    res = _run("bench", "cost", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["name"] for r in rows] == [r["name"] for r in expected]
    assert [int(r["steps"]) for r in rows] == [r["steps"] for r in expected]


def test_version_and_completion():
    res = _run("--version")
    assert res.exit_code == 0 and res.stdout == f"mimofm {mimofm.__version__}\n"
    help_text = _run("--help").output
    assert "--install-completion" in help_text and "--version" in help_text
