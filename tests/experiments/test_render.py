"""Each experiment's ``render`` on small synthetic stored results: the numbers in the tables."""

import json

from mimofm.experiments import classical, fm_paper, papp_paper, wifoe_paper

FM_SNRS = fm_paper.PAPER.snrs_db


def _fm_results(folder):
    rows = []
    for snr in FM_SNRS:
        w = 10.0 + snr / 10
        for p, f in (("zf", 0.5), ("wmmse", 1.0), ("fm-zero", 0.9), ("dpc", 1.1)):
            rows.append({"site": "s1", "snr_db": snr, "precoder": p, "sum_rate_mean": f * w})
    fm = {
        "site": "s1",
        "snr_db": 20.0,
        "model": "zero",
        "beta": 0.5,
        "method": "fm",
        "requested_sum_rate_mean": 6.0,
        "achieved_sum_rate_mean": 5.5,
        "rel_rate_error_mean": 0.04,
        "rel_rate_error_feasible_mean": 0.02,
        "energy_w_mean": 30.0,
        "antennas_on_mean": 40.0,
    }
    base = {k: fm[k] for k in ("site", "snr_db", "model", "beta")}
    f3 = [
        fm,
        {**base, "method": "qos@fm-rates", "energy_w_mean": 25.0, "fm_energy_ratio": 1.2},
        {**base, "method": "greedy@fm-rates", "energy_w_mean": 27.0, "fm_energy_ratio": 1.1},
        {**base, "method": "qos@requests", "feasible_fraction": 0.75},
    ]
    t1 = {
        "datasets": ["a/los", "b/nlos"],
        "rows": [
            {"model": "single:a/los", "dataset": "a/los", "ratio_to_wmmse": 0.95},
            {"model": "single:a/los", "dataset": "b/nlos", "ratio_to_wmmse": 0.5},
        ],
    }
    folder.mkdir()
    for name, doc in (("fig2", {"results": rows}), ("fig3", {"results": f3}), ("table1", t1)):
        (folder / f"{name}.json").write_text(json.dumps(doc))


def test_fm_render_tables_and_figures(tmp_path):
    _fm_results(tmp_path / "fm")
    md, pngs = fm_paper.render(tmp_path / "fm", tmp_path / "out")
    assert "| fm-zero | 0.900 | 0.900 | 0.900 | 0.900 | 0.900 |" in md
    assert "| zf | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 |" in md and "| dpc | 1.100 |" in md
    assert "fm-zero above ZF at every site and SNR ≤ 20 dB: yes." in md
    assert (
        "| s1 | zero | 0.5 | 6.00 | 5.50 | 4.0% | 2.0% | 30.0 | 40.0 | 25.0 | 27.0 | 1.200 | 1.100 | 75% |"
        in md
    )
    assert "energy ÷ QoS at the same rates 1.200 (target ≤ 1.10)" in md
    assert "| single:a/los | 0.950 | 0.500 |" in md  # Table I
    assert "Table II" not in md  # no table2.json stored: its section is left out
    assert [p.name for p in pngs] == ["fm_fig2.png", "fm_fig3.png"] and all(
        p.stat().st_size > 1000 for p in pngs
    )


def test_papp_render_ratios_recovery_and_csi(tmp_path):
    rows = []
    for snr in (0.0, 20.0):
        w = 10.0
        rates = {"zf": 5.0, "wmmse": w, "papp-zero": 9.0, "papp-deepall": 8.0, "papp-ft-full": 9.5}
        rates.update({f"papp-ft-{n}": 9.0 + 0.1 * i for i, n in enumerate(papp_paper.PAPER.shots[:-1])})
        rows += [{"site": "s1", "snr_db": snr, "precoder": p, "sum_rate_mean": r} for p, r in rates.items()]
    csi = []
    for e in papp_paper.PAPER.csi_nmses_db:
        for p, r in (("zf", 3.0), ("wmmse", 4.0), ("papp", 4.5 if e == -10.0 else 2.0)):
            csi.append({"site": "s1", "precoder": p, "csi_nmse_db": e, "sum_rate_mean": r})
    (tmp_path / "papp").mkdir()
    (tmp_path / "papp" / "eval.json").write_text(json.dumps({"results": rows}))
    (tmp_path / "papp" / "csi.json").write_text(json.dumps({"snr_db": 20.0, "results": csi}))
    md, pngs = papp_paper.render(tmp_path / "papp", tmp_path / "out")
    assert "| papp-zero | 0.900 | 0.900 | 0.900 |" in md and "| papp-deepall | 0.800 | 0.800 | 0.800 |" in md
    assert "* 10 samples: 0.0% (full fine-tuning gains 5.56% over zero-shot)" in md
    assert "* 40 samples: 40.0%" in md  # (9.2 − 9) / (9.5 − 9)
    assert "below DeepAll at 0 of 2" in md
    assert "| -10 | 3.00 | 4.00 | 4.50 |" in md and "papp beats ZF and WMMSE fed the raw estimate" in md
    assert [p.name for p in pngs] == ["papp_ratios.png", "papp_csi.png"]


def test_wifoe_fig4_lines_mark_targets_from_the_rates():
    spec = wifoe_paper.PAPER
    rates = {
        t: {
            "pretrained": {str(b): 3.0 for b in spec.budgets},
            "random": {str(b): 2.0 if t != "T12" else 3.5 for b in spec.budgets},
            "train": {"2000": 3.0},
            "wmmse": 6.0,
        }
        for t in spec.unseen
    }
    md = "\n".join(wifoe_paper.fig4_lines({"rates": rates}))
    assert "| T10 | MTL trunk (frozen) + new branch | 3.00 | 3.00 | 3.00 |" in md
    assert "| T10 | STL (whole model, random init) | – | 3.00 | – |" in md
    assert "random trunk at every budget: **not met** (6 of 9 points)" in md  # T12's random trunk wins
    assert "within 1% of STL at 2000 samples: ratios 1.000, 1.000, 1.000 — **met**" in md


def test_classical_render_times_and_ratios_to_zf():
    doc = {
        "rows": [
            {
                "num_bs_ant": 16,
                "num_ue": 2,
                "precoder": p,
                "iterations": it,
                "seconds_per_precoder": {"1": s, "64": s / 10},
                "ratio_to_zf": {"1": s / 1e-5, "64": s / 1e-5},
            }
            for p, it, s in (("zf", None, 1e-5), ("wmmse", 7.25, 1.2e-4))
        ],
        "threads": 2,
        "seconds_total": 3.0,
        "platform": "test-box",
        "torch": "t",
    }
    md = classical.render(doc)
    assert "| N_T | N_U | precoder | iters | µs @ b1 | ×ZF @ b1 | µs @ b64 | ×ZF @ b64 |" in md
    assert "| 16 | 2 | zf | - | 10.0 | 1.0 | 1.0 | 1.0 |" in md
    assert "| 16 | 2 | wmmse | 7.2 | 120.0 | 12.0 | 12.0 | 12.0 |" in md
    assert "(CPU, 2 threads)" in md and "test-box" in md


def test_wifoe_calibration_render_finds_the_crossing(tmp_path):
    from mimofm.experiments import wifoe_operating_point as op

    spec = op.CALIBRATION
    rates = {}
    for snr in (14.0, 16.0):  # Group 1 mean WMMSE 11.68 → 13.68: crosses the paper's 12.68 at 15 dB
        for t in spec.group1:
            rates[f"{t}@{snr:g}"] = {"wmmse": snr - 2.32, "zf": (snr - 2.32) / 2}
    (tmp_path / "data.json").write_text(json.dumps({"samples": 1, "rates": rates}))
    md = op.render_calibration(tmp_path, None)
    assert "| 14 | 11.68 | 5.84 | 0.500 |" in md and "| 16 | 13.68 | 6.84 | 0.500 |" in md
    assert "at a received SNR of **15.0 dB**; ZF is 0.500 of WMMSE there (paper: 0.541)" in md
    assert op.crossing([0.0, 1.0], [0.0, 2.0], 3.0) is None


def test_wifoe_operating_point_render_table2_row(tmp_path):
    from mimofm.experiments import wifoe_operating_point as op

    spec = op.OPERATING_POINT
    snr, pilot = 16.0, 20.0
    rows = {op.key(t, snr, pilot): {"wmmse": 12.0, "zf": 6.0} for t in spec.group1}
    models = {op.key(t, snr, pilot): {"mtl": 9.0} for t in spec.group1}
    (tmp_path / "classical.json").write_text(json.dumps({"rows": rows}))
    (tmp_path / "models.json").write_text(json.dumps({"rows": models}))
    md = op.render_op(tmp_path, None)
    assert "| **MTL (wifoe)** | " + " | ".join(["9.00"] * 9) + " | 9.00 | 0.750 | 11.5 (0.907) |" in md
    assert "T7 (ULA, line of sight): MTL 9.00 = 0.750 of perfect-CSI WMMSE (target 0.85; paper 0.942)." in md
