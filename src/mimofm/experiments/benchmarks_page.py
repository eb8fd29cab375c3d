"""The BENCHMARKS.md page from the JSON of the benchmark commands (each section names its command).

    python benchmarks/write_benchmarks_md.py --eval runs/bench_eval.json --speed runs/bench_speed.json \
        --eval-command "..." --speed-command "..." [--latency J] [--latency-1core J] [--scaling J] \
        [--fm-paper DIR] [--papp-paper DIR] [--wifoe-paper DIR] [--keep BENCHMARKS.md] > BENCHMARKS.md

With ``--keep``, a section whose JSON is not given is carried over verbatim from the earlier file (its
numbers, command and machine unchanged), so one benchmark can be re-run without re-running them all.
The training-cost section is always re-made from the shipped checkpoints' cards (read, never written:
``benchmarks/update_cards.py`` writes held-out numbers into them, when run deliberately).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mimofm.evaluation.complexity import mimofm_multiplications
from mimofm.evaluation.training_cost import training_cost
from mimofm.experiments import classical_speed, configurations, frontier
from mimofm.experiments.wifoe_paper import FIG4_VAL_COMMAND, FIG4_VAL_HEADING
from mimofm.precoders.refine import REFINE_STEPS
from mimofm.reports.bench import cost_markdown, scaling_figure, scaling_markdown, tradeoff_markdown

__all__ = [
    "WIFOE_OP_COMMAND",
    "WIFOE_OP_HEADING",
    "PageInputs",
    "benchmarks_page",
    "build_parser",
    "family_paper_section",
    "keep_block",
    "latency_section",
    "main",
    "paper_section",
    "quality_section",
    "speed_section",
    "summary_section",
    "wifoe_op_section",
    "wifoe_summary",
]


def summary_section(q: dict) -> list[str]:
    """One screen: per method, ratio to WMMSE per SNR (site mean), ratio to DPC, operations, time ratio
    to WMMSE."""
    rows = q["results"]
    pre = [p for p in dict.fromkeys(r["precoder"] for r in rows) if p != "dpc"]
    snrs = sorted({r["snr_db"] for r in rows})
    m = {(r["site"], r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in rows}
    sites = list(dict.fromkeys(r["site"] for r in rows))
    t = {
        r["precoder"]: r["seconds_per_precoder"]
        for r in rows
        if r["site"] == sites[0] and r["snr_db"] == snrs[len(snrs) // 2]
    }
    k, n = q["config"]["num_ue"], q["sites"][0]["num_bs_ant"]
    out = [
        "## Summary",
        "",
        f"Held-out sites, {k} users × {n} antennas; ratios of mean sum rates averaged over the three "
        f"sites; time per precoder from the same run at {snrs[len(snrs) // 2]:g} dB (batch 250, CPU); "
        "operations: "
        "real multiplications per precoder of mimofm's implementation (`mimofm.evaluation.complexity`; "
        "iterative "
        "methods at their mean iteration count in this run).",
        "",
        "| method | "
        + " | ".join(f"÷ WMMSE @ {s:g} dB" for s in snrs)
        + " | ÷ DPC (all SNR) | operations | time ÷ WMMSE |",
        "|---|" + "---|" * (len(snrs) + 3),
    ]
    for p in pre:
        ratios = [sum(m[(s, x, p)] / m[(s, x, "wmmse")] for s in sites) / len(sites) for x in snrs]
        dpc = sum(m[(s, x, p)] / m[(s, x, "dpc")] for s in sites for x in snrs) / (len(sites) * len(snrs))
        out.append(
            f"| {p} | " + " | ".join(f"{v:.3f}" for v in ratios) + f" | {dpc:.3f} | {_ops(p, rows, k, n)} | "
            f"{t[p] / t['wmmse']:.2f} |"
        )
    return out + [""]


def _ops(p: str, rows: list[dict], k: int, n: int) -> str:
    its = [r["iterations_mean"] for r in rows if r["precoder"] == p and r.get("iterations_mean") is not None]
    ops = mimofm_multiplications(p, k, n, sum(its) / len(its) if its else None)
    return "-" if ops is None else f"{ops:.3g}"


def keep_block(old: list[str], start: str, stop: str = "## ") -> list[str]:
    """The lines of an existing BENCHMARKS.md from the one starting with ``start`` up to the next
    ``## `` heading (or line starting with ``stop``): a section whose run is not repeated here is
    carried over verbatim (with its own command)."""
    i = next((j for j, line in enumerate(old) if line.startswith(start)), None)
    if i is None:
        raise SystemExit(f"--keep: no line starting with {start!r} in the kept file")
    j = next((j for j in range(i + 1, len(old)) if old[j].startswith(("## ", stop))), len(old))
    return old[i:j]


WIFOE_OP_HEADING = "## wifoe at the calibrated operating point"
WIFOE_OP_COMMAND = (
    "python benchmarks/wifoe_calibration.py data|pilot|report; python benchmarks/wifoe_calibration.py "
    "cep --pilot-offset-db O --steps 1000 (O = -1, 4); python benchmarks/wifoe_operating_point.py "
    "classical; python benchmarks/wifoe_operating_point.py baselines --shard i/2 (i = 0, 1); "
    "python benchmarks/wifoe_operating_point.py models --cep runs/wifoe_calibration/cep_+4/last; "
    "python benchmarks/wifoe_operating_point.py report; python benchmarks/wifoe_fig4_val.py "
    "train|report --shard i/2 --steps 2000 --val 0.1 --seeds 0 1 --stl-budgets --checkpoint "
    "src/mimofm/assets/checkpoints/wifoe --out runs/wifoe-op/fig4 --samples 100"
)


def wifoe_op_section(calibration: Path, op: Path, command: str, fig4: Path | None = None) -> list[str]:
    """The calibration of wifoe's operating point against the paper's baselines and the paper's evidence
    at that point, from the benchmarks' ``summary.md`` (``fig4``: ``benchmarks/wifoe_fig4_val.py``'s
    folder for a run on the shipped checkpoint)."""
    lines = [
        WIFOE_OP_HEADING,
        "",
        "The data SNR and the pilot SNR are chosen so that mimofm's *baselines* reproduce the wifoe paper's: "
        "perfect-CSI WMMSE on Group 1 for the data SNR, CEP-type estimation for the pilot SNR "
        "(`benchmarks/wifoe_calibration.py`); never the proposed method. Then every scheme at that point, "
        "with the 5G NR codebook baselines at equal feedback bits (`benchmarks/wifoe_operating_point.py`). "
        "Test drops, mean over K = 3..8.",
        "",
    ]
    for folder in (calibration, op):
        lines += [
            x.replace("### ", "#### ", 1) if x.startswith("### ") else x
            for x in (folder / "summary.md").read_text().splitlines()
        ] + [""]
    if fig4 is not None:
        lines += ["#### Fig. 4 analogue at the calibrated point (shipped trunk, STL not run)", ""]
        lines += (fig4 / "summary.md").read_text().splitlines() + [
            "",
            "![wifoe Fig. 4 at the calibrated point](docs/figures/wifoe_fig4_op.png)",
            "",
        ]
    lines += [
        "![wifoe calibration](docs/figures/wifoe_calibration.png)",
        "",
        "![wifoe at the calibrated operating point](docs/figures/wifoe_operating_point.png)",
        "",
        f"Command: `{command}`",
        "",
        "The two wifoe sections after this one are at the historical operating point (full-energy pilots), "
        "with the checkpoint shipped before this one (`recipes/wifoe-fullenergy.yaml`).",
        "",
    ]
    return lines


def wifoe_summary(folder: Path) -> list[str]:
    """One-screen rows for the 3GPP tasks: each FDD scheme ÷ perfect-CSI WMMSE (mean of T1–T9, test drops)."""
    t2 = json.loads((folder / "table2_fig3.json").read_text())
    snrs = [s for s in t2["snrs_db"] if s in (0.0, 10.0, 20.0)]

    def avg(m, s):
        return sum(t2["rates"][f"{t}@{s:g}"][m] for t in t2["tasks"]) / len(t2["tasks"])

    out = [
        "3GPP 38.901 tasks T1–T9 (FDD, learned pilots and B-bit feedback; ZF and WMMSE with perfect CSI), "
        "mean "
        "sum rate ÷ perfect-CSI WMMSE (the wifoe section below):",
        "",
        "| method | " + " | ".join(f"÷ WMMSE @ {s:g} dB" for s in snrs) + " |",
        "|---|" + "---|" * len(snrs),
    ]
    for m in ("zf", "lmmse", "dsc", "cep", "stl", "mtl"):
        name = {"zf": "zf (perfect CSI)", "lmmse": "lmmse pilots + wmmse", "mtl": "wifoe (MTL)"}.get(m, m)
        out.append(f"| {name} | " + " | ".join(f"{avg(m, s) / avg('wmmse', s):.3f}" for s in snrs) + " |")
    return out + [""]


def quality_section(doc: dict, command: str) -> list[str]:
    """Mean sum rate ± 95% CI per held-out site, SNR and precoder, and the ratios to WMMSE (``doc``: a
    ``mimofm eval`` result)."""
    rows = doc["results"]
    pre = list(dict.fromkeys(r["precoder"] for r in rows))
    snrs = sorted({r["snr_db"] for r in rows})
    mean = defaultdict(dict)
    for r in rows:
        mean[(r["site"], r["snr_db"])][r["precoder"]] = r
    out = [
        "## Quality on the held-out sites",
        "",
        f"Mean sum rate (bit/s/Hz) over {rows[0]['num_samples']} paired multi-user samples per site "
        f"({doc['config']['num_ue']} users × {doc['sites'][0]['num_bs_ant']} antennas, test positions), "
        "± the 95% confidence half-width. SNR: site-median single-user SNR.",
        "",
        "| site | SNR | " + " | ".join(pre) + " |",
        "|---|---|" + "---|" * len(pre),
    ]
    for (site, snr), d in mean.items():
        out.append(
            f"| {site} | {snr:g} dB | "
            + " | ".join(f"{d[p]['sum_rate_mean']:.2f} ± {d[p]['sum_rate_ci95']:.2f}" for p in pre)
            + " |"
        )
    out += [
        "",
        "Ratios of the mean sum rates, averaged over sites:",
        "",
        "| SNR | " + " | ".join(f"{p}/wmmse" for p in pre if p not in ("wmmse", "dpc")) + " | dpc/wmmse |",
        "|---|" + "---|" * (len(pre) - 1),
    ]
    for snr in snrs:
        cells = []
        for p in pre:
            if p in ("wmmse", "dpc"):
                continue
            v = [
                mean[(s, snr)][p]["sum_rate_mean"] / mean[(s, snr)]["wmmse"]["sum_rate_mean"]
                for (s, x) in mean
                if x == snr
            ]
            cells.append(f"{sum(v) / len(v):.3f}")
        v = [
            mean[(s, snr)]["dpc"]["sum_rate_mean"] / mean[(s, snr)]["wmmse"]["sum_rate_mean"]
            for (s, x) in mean
            if x == snr
        ]
        out.append(f"| {snr:g} dB | " + " | ".join(cells) + f" | {sum(v) / len(v):.3f} |")
    above = sum(r.get("samples_above_dpc", 0) for r in rows)
    out += [
        "",
        f"Samples where any precoder exceeded the DPC bound: {above}.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {doc['machine']['platform']}, torch {doc['machine']['torch']}, "
        f"{doc['machine']['threads']} threads.",
        "",
    ]
    return out


def speed_section(doc: dict, command: str) -> list[str]:
    """Time per precoder and ratio to ZF per size and batch (``doc``: ``benchmarks/bench_precoders.py``'s
    JSON)."""
    batches = list(doc["rows"][0]["seconds_per_precoder"])
    out = [
        "## Time per precoder (CPU)",
        "",
        "Median wall-clock of one batched call divided by the batch size, and the ratio to ZF measured in "
        "the same run. Channels: clustered (3 shared directions, 20 dB gain spread, median single-user SNR "
        "10 dB; `mimofm.evaluation.complexity`); WMMSE iteration counts depend on the channels.",
        "",
        "| N_T | N_U | precoder | iterations | "
        + " | ".join(f"µs @ batch {b} | ×ZF @ {b}" for b in batches)
        + " |",
        "|---|---|---|---|" + "---|---|" * len(batches),
    ]
    for r in doc["rows"]:
        it = f"{r['iterations']:.1f}" if r["iterations"] else "-"
        cells = " | ".join(
            f"{r['seconds_per_precoder'][b] * 1e6:.1f} | {r['ratio_to_zf'][b]:.2f}" for b in batches
        )
        note = " (batch ≤ 16)" if r["precoder"] == "wmmse-antenna" else ""
        out.append(f"| {r['num_bs_ant']} | {r['num_ue']} | {r['precoder']}{note} | {it} | {cells} |")
    out += [
        "",
        f"Command: `{command}` ({doc['seconds_total']:.0f} s)  ",
        f"Machine: {doc['platform']}, torch {doc['torch']}, {doc['threads']} threads.",
        "",
    ]
    return out


def latency_section(doc: dict, command: str, one_core: bool = False) -> list[str]:
    """Latency per method and batch against a cell's need (``doc``: ``mimofm bench latency``'s JSON)."""
    m = doc["machine"]
    title = (
        "## Real-time budget on one CPU core" if one_core else "## Latency: PyTorch and ONNX Runtime (CPU)"
    )
    out = [
        title,
        "",
        f"{doc['config']['num_ue']} users × {doc['config']['num_bs_ant']} antennas, clustered channels; "
        "median of "
        f"{doc['config']['repeats']} calls ÷ batch; ratios to WMMSE from the same run. Need: "
        f"{doc['needed_per_second']:,} precoders/s per cell (100 MHz NR, 30 kHz SCS, 4-RB subbands, 0.5 ms "
        "slots; "
        "`mimofm.evaluation.latency`). fm-onnx's graph outputs W itself (its K×K solve inside the graph); "
        "papp-onnx includes the float64 K×K step that forms W outside its graph; the user-space graphs' "
        "input features are computed in Python (at batch 1 most of their time); batch 1: the p50 of 200 "
        "calls after 10 warm-up calls. wifoe runs end to end on "
        "its 64-antenna task T4 (pilots with noise, B-bit feedback, BS decoder); its ONNX graph runs every "
        "expert "
        "on every token (dense dispatch: static shapes), twice the FFN work of PyTorch's top-2 routing."
        + (
            f" *-refined: the start plus {REFINE_STEPS} user-space sum-rate steps run one after another in "
            "PyTorch (no ONNX graph), so at batch 1 their time is mostly the per-step overhead."
            if any(r["method"].endswith("-refined") for r in doc["rows"])
            else ""
        )
        + (
            " PyTorch and ONNX Runtime both on one thread: how many cores a cell would need is 1 ÷ the share."
            if one_core
            else ""
        ),
        "",
        "| method | batch | µs / precoder | ÷ WMMSE | precoders/s | share of a cell's need |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        out.append(
            f"| {r['method']} | {r['batch']} | {r['seconds_per_precoder'] * 1e6:.1f} | "
            f"{r['ratio_to_wmmse']:.3f} | "
            f"{r['precoders_per_second']:,.0f} | {100 * r['budget_fraction']:.1f}% |"
        )
    ops = doc.get("operations")
    if ops and not one_core:
        out += [
            "",
            "Operations per precoder: mimofm's real-multiplication count (`mimofm.evaluation.complexity`; "
            "iterative methods at their mean iteration count on 64 of these channels; wifoe: `wifoe_flops` ÷ "
            "2, "
            "users' encoders included) and the matmul FLOPs PyTorch's FlopCounterMode counts on one call "
            "(factorizations and solves are not counted: a lower bound for the classical methods).",
            "",
            "| method | multiplications | measured FLOPs (matmul only) |",
            "|---|---|---|",
        ]
        for meth, c in ops.items():
            if c["multiplications"] is None and c["measured_flops_matmul_only"] is None:
                continue
            mul = "-" if c["multiplications"] is None else f"{c['multiplications']:.3g}"
            out.append(f"| {meth} | {mul} | {c['measured_flops_matmul_only']:.3g} |")
    out += [
        "",
        f"Command: `{command}`  ",
        f"Machine: {m['platform']}, torch {m['torch']}, {m['threads']} threads, {m['device']}.",
        "",
    ]
    return out


def paper_section(
    title: str,
    intro: str,
    folder: Path,
    figures: list[tuple[str, str]],
    command: str,
    skip_title: bool = False,
) -> list[str]:
    """A benchmark section: heading, what was compared, the run's summary.md, its figures, the command."""
    body = (folder / "summary.md").read_text().splitlines()
    body = ["#" + line if line.startswith("## ") else line for line in (body[1:] if skip_title else body)]
    out = [f"## {title}", "", intro, ""] + body + [""]
    for caption, png in figures:
        out += [f"![{caption}]({png})", ""]
    return out + [f"Command: `{command}`", ""]


_PAPERS = {  # family: (section title, what was compared, figures, skip the summary's own title)
    "fm": (
        "fm: the paper's results on the held-out sites",
        "Zero-shot: the shipped checkpoint's default head. Few-shot: 10 local train-split positions → the 5 "
        "most "
        "similar training datasets + those samples → a new head (300 steps). Full: a new head on every local "
        "train-split position (300 steps). Scratch: a model of the same size trained from scratch on the "
        "same "
        "local positions (300 steps). All numbers on the sites' test positions.",
        [
            ("fm Fig. 2 analogue", "docs/figures/fm_fig2.png"),
            ("fm Fig. 3 analogue", "docs/figures/fm_fig3.png"),
        ],
        False,
    ),
    "papp": (
        "papp: zero-shot, DeepAll and fine-tuning on the held-out sites",
        "Zero-shot: the shipped checkpoint (MLDG). DeepAll: the same recipe without MLDG, same budget. "
        "Scratch: "
        "the same recipe and budget on one held-out site's train positions alone. FT-n: the shipped model "
        "fine-tuned on n local train-split positions (full: all 700; mean over three draws), 200 steps at lr "
        "1e-3, users permuted and turned by random phases. papp-lite: the smaller shipped checkpoint "
        "(recipes/papp-lite.yaml), zero-shot. Test positions.",
        [
            ("papp Fig. 2 analogue: sum rate and ÷ WMMSE vs SNR", "docs/figures/papp_ratios.png"),
            ("papp sum rate vs CSI-estimation error", "docs/figures/papp_csi.png"),
        ],
        False,
    ),
    "wifoe": (
        "wifoe: the paper's tables on the 3GPP 38.901 tasks",
        "The historical operating point (full-energy pilots, received SNR 0–20 dB). MTL: the multi-task "
        "checkpoint of recipes/wifoe-fullenergy.yaml, shipped before the calibrated one (T1–T9). "
        "STL/CEP/DSC: one model per task, same architecture, "
        "same steps. End-to-end sum rate (learned pilots with noise, B-bit feedback) on the tasks' test "
        "drops, "
        "mean over K = 3..8; ZF and WMMSE with perfect CSI on the same draws. SNR: the beamformed "
        "single-user SNR (docs/wifoe.md).",
        [(f"wifoe Fig. {i} analogue", f"docs/figures/wifoe_fig{i}.png") for i in (3, 4, 5)],
        True,
    ),
    "wifoe-fig4-val": (
        f"wifoe {FIG4_VAL_HEADING}",
        'The Fig. 4 runs above train a fixed 2000 steps, far from converged (docs/wifoe.md, "Longer '
        'fine-tuning"). Here the same unseen tasks, budgets and shipped MTL checkpoint, each run '
        "choosing its own length on data held out of its budget; STL at 2000 samples only (the "
        "target's point).",
        [("wifoe Fig. 4, validated fine-tuning length", "docs/figures/wifoe_fig4_val.png")],
        False,
    ),
}


def family_paper_section(family: str, folder: Path, command: str) -> list[str]:
    """The section of one paper's benchmark (``family``: fm, papp, wifoe or wifoe-fig4-val)."""
    title, intro, figures, skip_title = _PAPERS[family]
    return paper_section(title, intro, folder, figures, command, skip_title=skip_title)


CONFIGURATIONS_HEADING = "## fm and papp on any number of users and antennas"
CONFIGURATIONS_COMMAND = (
    "mimofm data tr38901 --task T10|T6 --positions 500 --seed 0 --out runs/data/t10.h5|t6.h5; "
    "python benchmarks/configurations.py --extra runs/data/t10.h5 runs/data/t6.h5 "
    "--json runs/configurations.json"
)
FRONTIER_HEADING = "## Rate against CPU time: is the learned part worth it?"


CONFIGURATIONS_INTRO = (
    "One shipped fm and one shipped papp checkpoint (user-space form, `docs/fm.md`) on held-out data "
    "only: the bundled held-out sites' test positions (N_t < 64: the first rows of their 8×8 panel) and "
    "TR 38.901 arrays no fm/papp model trained on (T10: 16×8 = 128 antennas, T6: 16×16 = 256). Cells: "
    "mean over the group's sites of the sum rate ÷ converged WMMSE's on paired samples; `min`: the "
    "lowest site and SNR; `≥ ZF-WF`: at or above ZF-WF at every site and SNR. Targets: ≥ 0.99 at "
    "4 × 64, ≥ 0.97 elsewhere. `fm+wmmse-1`, `papp+wmmse-1`, `papp+wmmse-2`: the same checkpoints followed "
    "by one or two user-space WMMSE updates from the best (by sum rate) of the network's precoder and "
    "WMMSE's ZF-WF/RZF/MRT starts (`mimofm.models.zoo.polished`), so never below the network or ZF-WF; "
    "`wmmse-3`, WMMSE stopped after 3 updates from its own start, is the classical point of similar cost."
)
FRONTIER_INTRO = (
    "A neural precoder earns its place only where no classical method is both at least as fast and at "
    "least as good. Contenders include WMMSE stopped after 1, 2, 3, 5 and 10 iterations (user-space "
    "form), and the networks followed by one or two WMMSE updates from the best of their precoder and "
    "WMMSE's classical starts (`papp+wmmse-1`, `papp+wmmse-2`, `fm+wmmse-1`; their time includes the "
    "network's). Figures: `docs/figures/frontier.png` (4 × 64), `docs/figures/frontier_16x64.png`."
)


def study_section(heading: str, intro: str, body: str, command: str) -> list[str]:
    """A study's section: heading, what it measures, its rendered tables and the command that made it."""
    return [heading, "", intro, "", body.rstrip(), "", f"Command: `{command}`", ""]


def configurations_section(doc: dict, command: str) -> list[str]:
    """The configuration study's section: one table per precoder of sum rate ÷ WMMSE by (K, N_t) and SNR."""
    return study_section(CONFIGURATIONS_HEADING, CONFIGURATIONS_INTRO, configurations.render(doc), command)


def frontier_section(docs: list[dict], command: str) -> list[str]:
    """The frontier study's section: per configuration (one ``docs`` entry each, a subsection when there
    are several) and SNR, time per precoder, ratio to WMMSE, frontier membership."""
    if len(docs) == 1:
        return study_section(FRONTIER_HEADING, FRONTIER_INTRO, frontier.render(docs[0]), command)
    parts = []
    for doc in docs:
        k, n = doc["spec"]["num_ue"], doc["spec"]["num_bs_ant"]
        parts += [f"### {k} users × {n} antennas", "", frontier.render(doc).rstrip(), ""]
    return study_section(FRONTIER_HEADING, FRONTIER_INTRO, "\n".join(parts), command)


CLASSICAL_SPEED_HEADING = "## Classical precoders side by side: mimofm, NumPy, Sionna"
CLASSICAL_SPEED_COMMAND = "mimofm bench classical --threads 1 --json runs/classical.json"
CROSSOVER_COMMAND = "mimofm bench crossover --threads 1 --json runs/crossover.json"
CLASSICAL_SPEED_INTRO = (
    "Every speed claim here is a ratio measured in one run on the same channels: mimofm's kernels against "
    "a plain NumPy implementation of the same algorithms (`benchmarks/numpy_reference.py`, outside the "
    "package; its WMMSE is batch-synchronous: the batch iterates until its last sample stops, with μ found "
    "by 64 bisection halvings where mimofm uses Newton's method) and against Sionna PHY's own precoders "
    "(`rzf_precoding_matrix`, `cbf_precoding_matrix`; equal power per user). `× NumPy` and `× Sionna` are "
    "the reference's time ÷ mimofm's (> 1: mimofm is faster). The sum rates show that no implementation "
    "bought speed with quality: the same algorithm gives the same rate (mimofm's converged WMMSE stops each "
    "sample on its own, so its mean can sit a little below the batch-synchronous loop's)."
)


def classical_speed_section(
    doc: dict, command: str, crossover: dict | None, crossover_command: str, figure: str | None
) -> list[str]:
    """The side-by-side speed section, with the crossover of WMMSE's two forms when given."""
    lines = study_section(
        CLASSICAL_SPEED_HEADING, CLASSICAL_SPEED_INTRO, classical_speed.render_speed(doc), command
    )
    if crossover is not None:
        lines += [
            "### Where WMMSE's user-space and textbook forms cross",
            "",
            classical_speed.render_crossover(crossover),
            "",
            *([f"![WMMSE forms]({figure})", ""] if figure else []),
            f"Command: `{crossover_command}`",
            "",
        ]
    return lines


@dataclass
class PageInputs:
    """What the page is made from: each section's result (a JSON file or a benchmark's output folder; None:
    carried over from ``keep`` or left out) and the command that made it."""

    eval: Path | None = None  # mimofm eval on the held-out sites (None: --keep carries summary and quality)
    eval_command: str = ""
    speed: Path | None = None  # benchmarks/bench_precoders.py's JSON
    speed_command: str = ""
    fm_paper: Path | None = None
    fm_paper_command: str = "python benchmarks/fm_paper.py --out runs/fm_paper"
    papp_paper: Path | None = None
    papp_paper_command: str = "python benchmarks/papp_paper.py --out runs/papp_paper"
    wifoe_paper: Path | None = None
    wifoe_paper_command: str = (
        "python benchmarks/wifoe_paper.py train --shard i/2 (i = 0, 1); python benchmarks/wifoe_paper.py "
        "report"
    )
    wifoe_fig4_val: Path | None = None
    wifoe_fig4_val_command: str = FIG4_VAL_COMMAND
    wifoe_op: list[Path] | None = None  # calibration folder, operating-point folder[, Fig. 4 folder]
    wifoe_op_command: str = WIFOE_OP_COMMAND
    latency: Path | None = None
    latency_command: str = "mimofm bench latency --json runs/latency.json"
    latency_1core: Path | None = None
    latency_1core_command: str = "mimofm bench latency --threads 1 --json runs/latency_1core.json"
    scaling: Path | None = None
    scaling_command: str = "mimofm bench scaling --json runs/scaling.json"
    tradeoff: list[str] = field(default_factory=list)  # "LABEL=JSON" of fm rate-target results
    tradeoff_command: str = "mimofm eval --precoder fm --rate-targets random ..."
    configurations: Path | None = None  # benchmarks/configurations.py's JSON
    configurations_command: str = CONFIGURATIONS_COMMAND
    frontier: list[Path] | None = None  # benchmarks/frontier.py's JSON, one per configuration
    frontier_command: str = "python benchmarks/frontier.py --threads 2 --json runs/frontier.json"
    classical: Path | None = None  # mimofm bench classical's JSON
    classical_command: str = CLASSICAL_SPEED_COMMAND
    crossover: Path | None = None  # mimofm bench crossover's JSON
    crossover_command: str = CROSSOVER_COMMAND
    keep: Path | None = None  # an earlier page: sections without their result are carried over verbatim
    figures: Path = Path("docs/figures")  # where the scaling plot is written
    page_dir: Path = Path(".")  # the folder the page will live in (image links)


def build_parser() -> argparse.ArgumentParser:
    """The options of ``benchmarks/write_benchmarks_md.py`` (and of :func:`main`): :class:`PageInputs`'
    fields and ``--out``."""
    d = PageInputs()
    ap = argparse.ArgumentParser(prog="write_benchmarks_md")
    ap.add_argument(
        "--eval",
        type=Path,
        default=None,
        help="JSON of mimofm eval on the held-out sites (without it, "
        "--keep carries the summary and quality sections over)",
    )
    ap.add_argument("--speed", type=Path, default=None, help="JSON of benchmarks/bench_precoders.py")
    ap.add_argument("--eval-command", default="")
    ap.add_argument("--speed-command", default="")
    ap.add_argument("--fm-paper", type=Path, default=None, help="output folder of benchmarks/fm_paper.py")
    ap.add_argument("--fm-paper-command", default=d.fm_paper_command)
    ap.add_argument("--papp-paper", type=Path, default=None, help="output folder of benchmarks/papp_paper.py")
    ap.add_argument("--papp-paper-command", default=d.papp_paper_command)
    ap.add_argument(
        "--wifoe-paper", type=Path, default=None, help="output folder of benchmarks/wifoe_paper.py"
    )
    ap.add_argument("--wifoe-paper-command", default=d.wifoe_paper_command)
    ap.add_argument(
        "--wifoe-fig4-val", type=Path, default=None, help="output folder of benchmarks/wifoe_fig4_val.py"
    )
    ap.add_argument("--wifoe-fig4-val-command", default=d.wifoe_fig4_val_command)
    ap.add_argument(
        "--wifoe-op",
        type=Path,
        nargs="+",
        default=None,
        metavar="DIR",
        help="output folders of benchmarks/wifoe_calibration.py and benchmarks/wifoe_operating_point.py "
        "(and, third, of benchmarks/wifoe_fig4_val.py run on the shipped checkpoint)",
    )
    ap.add_argument("--wifoe-op-command", default=d.wifoe_op_command)
    ap.add_argument("--latency", type=Path, default=None, help="JSON of mimofm bench latency")
    ap.add_argument("--latency-command", default=d.latency_command)
    ap.add_argument(
        "--latency-1core", type=Path, default=None, help="JSON of mimofm bench latency --threads 1"
    )
    ap.add_argument("--latency-1core-command", default=d.latency_1core_command)
    ap.add_argument("--configurations", type=Path, default=None, help="JSON of benchmarks/configurations.py")
    ap.add_argument("--configurations-command", default=d.configurations_command)
    ap.add_argument(
        "--frontier",
        type=Path,
        nargs="+",
        default=None,
        help="JSON of benchmarks/frontier.py (one per K × N_t)",
    )
    ap.add_argument("--frontier-command", default=d.frontier_command)
    ap.add_argument("--classical", type=Path, default=None, help="JSON of mimofm bench classical")
    ap.add_argument("--classical-command", default=d.classical_command)
    ap.add_argument("--crossover", type=Path, default=None, help="JSON of mimofm bench crossover")
    ap.add_argument("--crossover-command", default=d.crossover_command)
    ap.add_argument("--scaling", type=Path, default=None, help="JSON of mimofm bench scaling")
    ap.add_argument("--scaling-command", default=d.scaling_command)
    ap.add_argument(
        "--tradeoff",
        action="append",
        default=[],
        metavar="LABEL=JSON",
        help="fm rate-target results (mimofm eval --rate-targets random --json), repeatable",
    )
    ap.add_argument("--tradeoff-command", default=d.tradeoff_command)
    ap.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="an earlier BENCHMARKS.md: sections whose JSON is not given are carried over from it verbatim",
    )
    ap.add_argument("--figures", type=Path, default=d.figures, help="where the scaling plot is written")
    ap.add_argument(
        "--page-dir", type=Path, default=d.page_dir, help="the folder the page will live in (image links)"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="write the page here (may be the --keep file itself)"
    )
    return ap


def main(argv: list[str] | None = None) -> str:
    """Parse ``argv`` (the options of :func:`build_parser`), write ``--out`` if given, return the page."""
    ap = build_parser()
    a = ap.parse_args(argv)
    if a.eval is None and a.keep is None:
        ap.error(
            "give --eval (mimofm eval's JSON) or --keep (an earlier page to carry its sections over from)"
        )
    if a.wifoe_op is not None and len(a.wifoe_op) not in (2, 3):
        ap.error("--wifoe-op takes CALIBRATION_DIR OP_DIR [FIG4_DIR]")
    args = sys.argv[1:] if argv is None else argv
    made = "`python benchmarks/write_benchmarks_md.py " + " ".join(shlex.quote(x) for x in args) + "`"
    page = benchmarks_page(PageInputs(**{k: v for k, v in vars(a).items() if k != "out"}), made)
    if a.out:
        a.out.write_text(page + "\n")
    return page


def benchmarks_page(a: PageInputs, made: str) -> str:
    """The BENCHMARKS.md page from the results in ``a``; ``made``: the command line that made it, for the
    page's last section. Writes only the scaling plot (into ``a.figures``)."""
    if a.eval is None and a.keep is None:
        raise ValueError(
            "give `eval` (mimofm eval's JSON) or `keep` (an earlier page to carry sections from)"
        )
    if a.wifoe_op is not None and len(a.wifoe_op) not in (2, 3):
        raise ValueError("`wifoe_op` takes CALIBRATION_DIR OP_DIR [FIG4_DIR]")
    old = a.keep.read_text().splitlines() if a.keep else None

    def section(path, make, start):
        if path:
            return make()
        if old is None:
            return []
        try:
            return keep_block(old, start)
        except SystemExit as e:  # the kept page never had this section: the new one has none either
            print(f"note: {e}", file=sys.stderr)
            return []

    lines = [
        "# mimofm benchmarks",
        "",
        "Generated by `mimofm.experiments.benchmarks_page` (`benchmarks/write_benchmarks_md.py`, `mimofm "
        "bench suite`) "
        "from the JSON of the commands named below; "
        "every number comes from those runs.",
        "",
    ]
    q = json.loads(a.eval.read_text()) if a.eval else None
    lines += summary_section(q) if q is not None else keep_block(old, "## Summary", "3GPP 38.901 tasks T1–T9")
    lines += section(a.wifoe_paper, lambda: wifoe_summary(a.wifoe_paper), "3GPP 38.901 tasks T1–T9")
    lines += (
        quality_section(q, a.eval_command) if q is not None else keep_block(old, "## Quality on the held-out")
    )
    lines += section(
        a.fm_paper, lambda: family_paper_section("fm", a.fm_paper, a.fm_paper_command), "## fm: "
    )
    variants = {x.split("=", 1)[0]: json.loads(Path(x.split("=", 1)[1]).read_text()) for x in a.tradeoff}
    lines += section(
        variants, lambda: tradeoff_markdown(variants, a.tradeoff_command), "## fm rate-target mode"
    )
    lines += section(
        a.papp_paper, lambda: family_paper_section("papp", a.papp_paper, a.papp_paper_command), "## papp: "
    )
    lines += section(
        a.configurations,
        lambda: configurations_section(json.loads(a.configurations.read_text()), a.configurations_command),
        CONFIGURATIONS_HEADING,
    )
    lines += section(
        a.frontier,
        lambda: frontier_section([json.loads(f.read_text()) for f in a.frontier], a.frontier_command),
        FRONTIER_HEADING,
    )
    lines += section(
        a.wifoe_op,
        lambda: wifoe_op_section(*a.wifoe_op[:2], a.wifoe_op_command, *a.wifoe_op[2:]),
        WIFOE_OP_HEADING,
    )
    lines += section(
        a.wifoe_paper,
        lambda: family_paper_section("wifoe", a.wifoe_paper, a.wifoe_paper_command),
        "## wifoe: ",
    )
    lines += section(
        a.wifoe_fig4_val,
        lambda: family_paper_section("wifoe-fig4-val", a.wifoe_fig4_val, a.wifoe_fig4_val_command),
        f"## wifoe {FIG4_VAL_HEADING}",
    )
    lines += section(
        a.latency,
        lambda: latency_section(json.loads(a.latency.read_text()), a.latency_command),
        "## Latency: ",
    )
    lines += section(
        a.latency_1core,
        lambda: latency_section(
            json.loads(a.latency_1core.read_text()), a.latency_1core_command, one_core=True
        ),
        "## Real-time budget on one CPU core",
    )

    def classical():
        xo = json.loads(a.crossover.read_text()) if a.crossover else None
        fig = None
        if xo is not None:
            from mimofm.evaluation.plots import plot_crossover

            fig = os.path.relpath(plot_crossover(xo, a.figures / "crossover.png"), a.page_dir)
        return classical_speed_section(
            json.loads(a.classical.read_text()), a.classical_command, xo, a.crossover_command, fig
        )

    lines += section(a.classical, classical, CLASSICAL_SPEED_HEADING)
    if a.scaling:
        sc = json.loads(a.scaling.read_text())
        fig = scaling_figure(sc, a.figures / "scaling.png")
    lines += section(
        a.scaling,
        lambda: scaling_markdown(sc, a.scaling_command, os.path.relpath(fig, a.page_dir)),
        "## Scaling in N_T and N_U",
    )
    lines += cost_markdown(training_cost(), "mimofm bench cost")
    lines += section(
        a.speed,
        lambda: speed_section(json.loads(a.speed.read_text()), a.speed_command),
        "## Time per precoder (CPU)",
    )
    before = []
    if old is not None:  # an update of a kept page: its own recipe first, then this update
        try:
            before = [x.rstrip() for x in keep_block(old, "## How this page was made")[1:] if x.strip()]
            before = [x for x in before if x != "then: " + made]  # the same update again: listed once
        except SystemExit:
            pass
    if before:
        lines += ["## How this page was made", ""] + [x + "  " for x in before] + ["then: " + made, ""]
    else:
        lines += ["## How this page was made", "", made, ""]
    return "\n".join(lines)
