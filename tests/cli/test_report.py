"""`mimofm report` re-makes tables and figures from stored benchmark JSON (synthetic results here)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import mimofm
from mimofm.cli.main import app
from mimofm.experiments.papp_paper import PAPER as PAPP

SHOTS = PAPP.shots

OLD_SNRS = [
    0.0,
    10.0,
    20.0,
    30.0,
]  # a result stored before the sweep reached 40 dB: rendered with its own points


def _papp_eval(folder):
    rows = []
    for snr in OLD_SNRS:
        w = 10.0 + snr / 10
        rates = {
            "zf": 0.5 * w,
            "wmmse": w,
            "papp-zero": 0.95 * w,
            "papp-deepall": 0.96 * w,
            "papp-lite": 0.94 * w,
            **{f"papp-ft-{n}": (0.95 + 0.01 * i) * w for i, n in enumerate(SHOTS)},
        }
        rows += [
            {
                "site": "s1",
                "snr_db": snr,
                "precoder": p,
                "sum_rate_mean": r,
                "iterations_mean": 12.0 if p == "wmmse" else None,
            }
            for p, r in rates.items()
        ]
    folder.mkdir()
    (folder / "eval.json").write_text(json.dumps({"results": rows}))


def _report(family: str, folder, out) -> str:
    """`mimofm report` of one family's results folder; the report's Markdown."""
    folders = {"fm": "", "papp": "", "wifoe": "", family: str(folder)}
    r = CliRunner().invoke(
        app, ["report", *(x for f, v in folders.items() for x in (f"--{f}", v)), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    return (out / "report.md").read_text()


def test_report_from_stored_papp_results(tmp_path):
    _papp_eval(tmp_path / "papp")
    out = tmp_path / "rep"
    md = _report("papp", tmp_path / "papp", out)
    assert "| method | 0 dB | 10 dB | 20 dB | 30 dB | mean |" in md
    assert "| papp-zero | 0.950 | 0.950 | 0.950 | 0.950 | 0.950 |" in md
    assert "below DeepAll at 4 of 4" in md  # 0.95 < 0.96 at every SNR
    assert "benchmarks/papp_paper.py" in md
    # the shipped papp's deployed path (user-space form) at 4 × 64
    assert "(Table I analogue), 20 dB" in md and "| papp-zero | 5.02e+05 | 1/69 | 11.40 |" in md
    assert "papp-zero needs 1/69 of WMMSE's multiplications at 20 dB (target ≤ 1/50: met" in md
    assert "30 dB: 12.0 iterations, 1/69." in md
    assert "| papp-lite | 1.67e+05 | 1/207 | 11.28 |" in md  # the shipped papp-lite's size
    assert "papp-lite needs 1/207 of WMMSE's multiplications at 20 dB (target ≤ 1/50: met" in md
    assert (out / "papp_ratios.png").stat().st_size > 1000
    page = (out / "report.html").read_text()  # the same report as a standalone page
    assert "<table>" in page and "papp-zero" in page
    # one file: the figure embedded, not linked
    assert (
        '<img alt="papp_ratios" src="data:image/png;base64,' in page and 'src="papp_ratios.png"' not in page
    )


def test_report_errors_name_the_missing_input(tmp_path):
    r = CliRunner().invoke(app, ["report", "--fm", "", "--wifoe", "", "--papp", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "does not exist" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["report", "--fm", "", "--wifoe", "", "--papp", str(tmp_path / "empty")])
    assert r.exit_code != 0 and "eval.json is missing" in r.output
    r = CliRunner().invoke(app, ["report", "--fm", "", "--wifoe", "", "--papp", ""])
    assert r.exit_code != 0 and "no results folder" in r.output


def test_report_without_inputs_names_what_to_give_and_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # none of the default folders (runs/fm_paper, ...) exists here
    r = CliRunner().invoke(app, ["report"])
    assert r.exit_code == 2
    assert "nothing to report: give result JSON files" in r.output and "runs/papp_paper" in r.output
    assert not (tmp_path / "runs").exists()  # no empty report folder left behind
    r = CliRunner().invoke(app, ["report", "--papp", "nope", "--out", "rep"])
    assert r.exit_code == 2 and "does not exist" in r.output and not (tmp_path / "rep").exists()


def test_report_uses_the_default_folders_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    _papp_eval(tmp_path / "runs" / "papp_paper")  # only papp's default folder exists: fm and wifoe skipped
    r = CliRunner().invoke(app, ["report"])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "runs" / "report" / "report.md").read_text()
    assert "## papp:" in md and "## fm:" not in md and "## wifoe:" not in md


def test_seed_mean_averages_fine_tuning_seeds_and_reports_each():
    from mimofm.experiments.papp_paper import seed_mean, summary

    rows = []
    for snr in OLD_SNRS:
        rows += [
            {"site": "s1", "snr_db": snr, "precoder": p, "sum_rate_mean": v}
            for p, v in [("wmmse", 10.0), ("papp-zero", 9.0), ("papp-deepall", 9.0)]
        ]
        for seed, (few, full) in enumerate([(9.5, 10.0), (9.8, 10.0)]):  # 50% and 80% of full's gain
            rows += [
                {"site": "s1", "snr_db": snr, "precoder": f"papp-ft-{n}-s{seed}", "sum_rate_mean": v}
                for n, v in [("10", few), ("20", few), ("40", few), ("100", few), ("full", full)]
            ]
    doc = seed_mean({"results": rows})
    want = {"wmmse", "papp-zero", "papp-deepall", *(f"papp-ft-{n}" for n in SHOTS)}
    assert {r["precoder"] for r in doc["results"]} == want
    assert len(doc["per_seed"]) == 2 * len(SHOTS) * len(OLD_SNRS)
    md = summary(doc)
    assert "mean over 2 seeds" in md and "| papp-ft-40 | 0.965 | 0.965 | 0.965 | 0.965 | 0.965 |" in md
    assert "* 40 samples: 65.0% (full fine-tuning gains 11.11% over zero-shot); per seed: 50.0 / 80.0%" in md


def test_no_recovery_ratio_when_full_fine_tuning_gains_almost_nothing():
    from mimofm.experiments.papp_paper import summary

    rows = []
    for snr in OLD_SNRS:
        rows += [
            {"site": "s1", "snr_db": snr, "precoder": p, "sum_rate_mean": v}
            for p, v in [
                ("wmmse", 10.0),
                ("papp-zero", 9.0),
                ("papp-deepall", 9.0),
                ("papp-refined-zero", 10.0),
            ]
        ]
        rows += [
            {
                "site": "s1",
                "snr_db": snr,
                "precoder": f"papp{r}-ft-{n}",
                "sum_rate_mean": v + (0.0003 if n == "full" else 0),
            }
            for n in SHOTS
            for r, v in [("", 9.5), ("-refined", 10.0)]
        ]
    md = summary({"results": rows})
    assert "* 40 samples: 99.9%" in md  # papp: full fine-tuning gains 5.6%, a ratio is printed
    assert "papp-refined: full fine-tuning gains 0.00% over zero-shot, too little for a recovery ratio" in md
    assert "40 samples +0.00%, 100 samples +0.00%, all samples +0.00%." in md


def test_wifoe_fig4_table_marks_strategies_not_run_at_a_budget(tmp_path):
    from mimofm.experiments.wifoe_paper import PAPER, fig4_val_markdown, plot_fig4

    BUDGETS, UNSEEN = PAPER.budgets, PAPER.unseen

    rates, per_seed, steps = {}, {}, {}
    for i, t in enumerate(UNSEEN):
        rates[t] = {
            "pretrained": {str(b): 3.0 + i for b in BUDGETS},
            "random": {str(b): 2.9 + i for b in BUDGETS},
            "train": {"2000": 3.0 + i},
            "wmmse": 6.0,
        }
        per_seed[t] = {
            "pretrained": {str(b): [2.9 + i, 3.1 + i] for b in BUDGETS},
            "train": {"2000": [3.0 + i] * 2},
        }
        steps[t] = {"pretrained": {str(b): [6000, 5400] for b in BUDGETS}, "train": {"2000": [3300, 3600]}}
    rates["T10"]["random"]["8000"] = 3.5  # the random trunk wins one budget
    doc = {
        "snr_db": 10.0,
        "max_steps": 6000,
        "val_fraction": 0.1,
        "samples_per_k": 200,
        "seeds": [0, 1],
        "rates": rates,
        "per_seed": per_seed,
        "best_steps": steps,
    }
    md = fig4_val_markdown(doc)
    assert "| T10 | STL (whole model, random init) | – | 3.00 | – |" in md
    assert "every budget: **not met**" in md and "ratios 1.000, 1.000, 1.000 — **met**" in md
    assert "| T12 | STL (whole model, random init) | – | 5.00 / 3300 · 5.00 / 3600 | – |" in md
    assert "every 300 steps" in md and "mean of 2 seeds" in md
    plot_fig4(doc, tmp_path / "f4.png", "title")
    assert (tmp_path / "f4.png").stat().st_size > 1000


def _wifoe_results(folder):
    """Synthetic results of benchmarks/wifoe_paper.py (and wifoe_fig4_val.py in its default subfolder)."""
    from mimofm.experiments.wifoe_paper import PAPER

    BUDGETS, PRETRAIN, SCALE, SNRS = PAPER.budgets, PAPER.pretrain, PAPER.scale, PAPER.snrs_db
    STRATEGIES, UNSEEN = PAPER.strategies, PAPER.unseen

    methods = ("zf", "wmmse", "lmmse", "mtl", "stl", "cep", "dsc")
    t2 = {
        "snrs_db": SNRS,
        "tasks": PRETRAIN,
        "rates": {
            f"{t}@{s:g}": {m: 1.0 + i + s / 10 for i, m in enumerate(methods)} for t in PRETRAIN for s in SNRS
        },
        "params": {
            "mtl": {"trunk": 4e5, "per_task": 1e5, "total": 1.3e6},
            **{
                m: {"per_task": dict.fromkeys(PRETRAIN, 500000.0), "total": 4.5e6}
                for m in ("stl", "cep", "dsc")
            },
        },
        "flops": {m: dict.fromkeys(PRETRAIN, 2000000.0) for m in ("mtl", "stl", "cep", "dsc")},
    }
    row = {
        m: {"source_source": 2.0, "source_target": 1.5, "d_sub": 0.5, "d_div": 0.25}
        for m in ("mtl", "stl", "cep", "dsc")
    }
    t3 = {f"{s:g}": {**row, "target_target_stl": 1.8} for s in (0.0, 10.0, 20.0)}
    f5 = {
        n: {
            "rate": 2.0,
            "trunk_params": 3e5,
            "total_params": 1e6,
            "bs_flops_k8": 1e6,
            "experts": kw.get("num_experts", 0) if kw["moe"] else 0,
            "top_k": kw.get("top_k", 0),
        }
        for n, kw in SCALE.items()
    }
    f4 = {
        "snr_db": 10.0,
        "budgets": BUDGETS,
        "rates": {
            t: {**{s: {str(b): 3.0 for b in BUDGETS} for s in STRATEGIES}, "wmmse": 6.0} for t in UNSEEN
        },
    }
    folder.mkdir()
    for name, doc in (("table2_fig3", t2), ("table3", t3), ("fig5", f5), ("fig4", f4)):
        (folder / f"{name}.json").write_text(json.dumps(doc))
    val = {
        "snr_db": 10.0,
        "budgets": BUDGETS,
        "max_steps": 6000,
        "val_fraction": 0.1,
        "samples_per_k": 200,
        "seeds": [0, 1],
        "rates": {
            t: {
                "pretrained": {str(b): 3.2 for b in BUDGETS},
                "random": {str(b): 3.1 for b in BUDGETS},
                "train": {"2000": 3.3},
                "wmmse": 6.0,
            }
            for t in UNSEEN
        },
        "per_seed": {t: {"pretrained": {str(b): [3.1, 3.3] for b in BUDGETS}} for t in UNSEEN},
        "best_steps": {t: {"pretrained": {str(b): [5700, 6000] for b in BUDGETS}} for t in UNSEEN},
    }
    (folder / "fig4_val").mkdir()
    (folder / "fig4_val" / "fig4.json").write_text(json.dumps(val))


def test_report_from_stored_wifoe_results_includes_the_validated_fig4(tmp_path):
    _wifoe_results(tmp_path / "wifoe")
    out = tmp_path / "rep"
    md = _report("wifoe", tmp_path / "wifoe", out)
    assert "Table II analogue" in md and "| **mean** |" in md
    assert (
        "Fig. 4 with the fine-tuning length chosen on validation" in md
        and "benchmarks/wifoe_fig4_val.py" in md
    )
    assert "| T10 | MTL trunk (frozen) + new branch | 3.20 | 3.20 | 3.20 |" in md  # the validated table
    assert "3.10 / 5700 · 3.30 / 6000" in md and "within 1% of STL at 2000 samples: ratios 0.970" in md
    for png in ("wifoe_fig3", "wifoe_fig4", "wifoe_fig5", "wifoe_fig4_val"):
        assert (out / f"{png}.png").stat().st_size > 1000 and f"![{png}]({png}.png)" in md


def test_quickstart_report_has_sections_captions_and_context(tmp_path):
    from mimofm.cli.quickstart import _report as quickstart_report
    from mimofm.evaluation.plots import plot_sum_rate_vs_snr, plot_tradeoff
    from mimofm.reports import write_html
    from tests.reports import results_docs as docs

    result, trade = docs.eval_doc(), docs.tradeoff_doc()
    pngs = [
        plot_sum_rate_vs_snr(result, tmp_path / "sum_rate_vs_snr.png"),
        plot_tradeoff(trade, tmp_path / "fm_energy_vs_rate.png"),
    ]
    md = quickstart_report(result, trade, pngs, 100, 0)
    assert "## Sum rate on the held-out sites" in md and "## fm rate-target mode" in md
    assert "*Rate error*: the mean relative per-user error |r_u − R*_u| / max(R*_u, 0.1)" in md
    assert "| s1 | 0.2 | 2.00 | 2.10 | 4.2% | 30.0 |" in md
    (tmp_path / "report.md").write_text(md)
    page = write_html(tmp_path / "report.md", command="mimofm quickstart --samples 100").read_text()
    assert page.count("<figure>") == 2 and page.count('src="data:image/png;base64,') == 2
    assert (
        "bottom row: each precoder&#x27;s sum rate ÷ WMMSE&#x27;s" in page or "÷ WMMSE's on the same" in page
    )
    assert (
        "made by <code>mimofm quickstart --samples 100</code>" in page
        and f"mimofm {mimofm.__version__}" in page
    )
