"""The fm paper's deployment results on mimofm's held-out sites: spec, resumable steps, tables and figures.

Steps (each one's result is cached in the run folder, so a killed run resumes where it stopped):

1. **adapt** every held-out bundled site: few-shot (10 local positions → the 5 most similar training
   datasets + the local samples → a new head) and full (a new head on every local train-split position);
2. **scratch**: an fm of the same size trained from scratch on the site's local train positions only,
   for as many steps as the full adaptation (the paper's comparison for full-shot);
3. **fig2**: maximum sum rate on the site's *test* positions over an SNR sweep, zero/few/full-shot and
   scratch against ZF, RZF, WMMSE and the DPC bound (paired samples) → ``fig2.json``, ``fig2.png``;
4. **fig3**: random rate requests (β = 0.2…0.8 of each sample's WMMSE sum rate) at 20 dB: fm's energy
   and per-user rate error against QoS power minimization and its greedy antenna switch-off at the
   same achieved rates → ``fig3.json``, ``fig3.png``;
5. **table1** / **table2**: single-dataset models across datasets, complexity at 4 × 64;
6. ``summary.md``: the tables, with the targets of the fm issue, met or not.

Only train-split positions of a held-out site are ever used for adaptation; every number is measured
on its test split. :func:`render` re-makes every table and figure from the stored JSON files.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mimofm._io import write_json
from mimofm.adaptation.fm import adapt_fm
from mimofm.core.rates import user_rates
from mimofm.evaluation.complexity import complexity
from mimofm.evaluation.evaluate import compare_checkpoints, load_sets
from mimofm.evaluation.plots import plot_tradeoff
from mimofm.evaluation.tradeoff import TradeoffConfig, evaluate_tradeoff
from mimofm.experiments._heldout import HeldoutSpec, heldout_files, rate_table, ratio_table_md, sites_of
from mimofm.experiments._steps import StepResult, Steps
from mimofm.models.zoo import load_fm
from mimofm.precoders.wmmse import wmmse
from mimofm.reports.plots import plt, savefig, variant_styles
from mimofm.training.fm_recipe import FMRecipe, draw_samples, load_datasets
from mimofm.training.recipes import site_dir
from mimofm.training.trainer import TrainConfig, train

__all__ = [
    "COMMAND",
    "PAPER",
    "FMPaperSpec",
    "plot_fig2",
    "plot_fig3",
    "render",
    "run",
    "summary",
    "table1_md",
    "table2_md",
]

log = logging.getLogger(__name__)

COMMAND = "python benchmarks/fm_paper.py --out {folder}"


@dataclass(frozen=True)
class FMPaperSpec(HeldoutSpec):
    """The fm paper analogue's operating points and budgets (defaults: the published run); ``snrs_db`` and
    ``samples``: Fig. 2's sweep and samples per site and SNR."""

    classical: tuple[str, ...] = ("zf", "rzf", "wmmse", "dpc")
    few_shots: int = 10  # local positions of few-shot adaptation
    checkpoint: str | None = None  # pretrained fm (None: the shipped one)
    tradeoff_snr_db: float = 20.0
    tradeoff_samples: int = 300
    greedy_samples: int = 10
    adapt_steps: int = 300
    scratch_steps: int = 300
    table1_sites: tuple[str, ...] = ("munich-a", "sf-a", "canyon")
    table1_samples: int = 200


PAPER = FMPaperSpec()


def table1_md(t1: dict) -> list[str]:
    """Table I analogue: each single-dataset model's sum rate ÷ WMMSE on every dataset."""
    names = t1["datasets"]
    out = [
        "### Single-dataset models across datasets (Table I analogue), 20 dB",
        "",
        "Rows: the model (trained on one dataset's train positions, or the foundation model's default head); "
        "columns: the dataset whose test users it serves; entries: mean sum rate ÷ WMMSE.",
        "",
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label in dict.fromkeys(r["model"] for r in t1["rows"]):
        v = {r["dataset"]: r["ratio_to_wmmse"] for r in t1["rows"] if r["model"] == label}
        out.append(f"| {label} | " + " | ".join(f"{v[n]:.3f}" for n in names) + " |")
    return out + [""]


def plot_fig2(doc: dict, path: Path, spec: FMPaperSpec = PAPER) -> None:
    """Sum rate ÷ WMMSE against SNR, one panel per site (``doc``: ``fig2.json``)."""
    snrs = list(spec.snrs_db)
    rows = doc["results"]
    sites = sites_of(rows)
    m = rate_table(rows)
    methods = list(dict.fromkeys(r["precoder"] for r in rows))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.3 * len(sites), 3.6), squeeze=False, sharey=True)
    style = variant_styles([p for p in methods if p != "dpc"])  # a refined variant: its base's colour, dotted
    for ax, s in zip(axes[0], sites):
        for p in methods:
            y = [m[(s, x, p)] / m[(s, x, "wmmse")] for x in snrs]
            if p == "dpc":
                ax.plot(snrs, y, "--k", label=p)
            else:
                ax.plot(snrs, y, label=p, **style[p])
        ax.set_title(s)
        ax.set_xlabel("median single-user SNR (dB)")
        ax.set_ylim(0.0, 1.12)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("sum rate ÷ WMMSE (test positions)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    savefig(fig, path)


def plot_fig3(doc: dict, path: Path) -> None:
    """fm's energy against the rate requests, with QoS and greedy switch-off (``doc``: ``fig3.json``)."""
    plot_tradeoff(doc, path)


def table2_md(t2: dict) -> list[str]:
    """Table II analogue: FLOPs, multiplications and time per precoder at 4 users × 64 antennas."""
    r = {x["precoder"]: x for x in t2["reports"]}
    out = [
        "### Complexity at 4 users × 64 antennas (Table II analogue)",
        "",
        "Paper FLOPs: the fm paper's Table II formulas (WMMSE in its N_T-dimensional form, with the "
        "iteration "
        "count measured here; fm: the paper's own model). Measured: matmul-like FLOPs counted by PyTorch's "
        "FlopCounterMode on one call (a lower bound for the iterative solvers, whose eigen-decompositions "
        "and solves it does not count; nearly exact for fm, which is linear layers and attention). Time: "
        f"CPU, {r['fm']['threads']} threads, median of 5 calls ÷ batch (wmmse-antenna at batch 16 for the "
        "large-batch column).",
        "",
        "| precoder | iterations | paper FLOPs | measured FLOPs | mimofm multiplications | µs @ batch 1 | µs "
        "@ large batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in r.items():
        paper = next(iter(x["analytic"].values()), None)
        t = x["seconds_per_precoder"]
        big = t.get("1024", t.get("16"))
        fmt = lambda v: f"{v / 1e6:.3f} M" if v else "-"  # noqa: E731
        out.append(
            f"| {name} | {x['iterations']:.1f} | {fmt(paper)} | {fmt(x['measured_flops_matmul_only'])} | "
            f"{fmt(x['mimofm_multiplications'])} | {t['1'] * 1e6:.0f} | {big * 1e6:.1f} |"
            if x["iterations"]
            else f"| {name} | - | {fmt(paper)} | {fmt(x['measured_flops_matmul_only'])} | "
            f"{fmt(x['mimofm_multiplications'])} | {t['1'] * 1e6:.0f} | {big * 1e6:.1f} |"
        )
    fm, wa, wu = r["fm"], r["wmmse-antenna"], r["wmmse"]
    wa_paper = next(iter(wa["analytic"].values()))
    out += [
        "",
        f"fm measured FLOPs ÷ WMMSE paper-count FLOPs (N_T form): "
        f"{fm['measured_flops_matmul_only'] / wa_paper:.3f} (target ≤ 0.125).",
        "fm ÷ mimofm's user-space WMMSE: multiplications "
        f"{fm['measured_flops_matmul_only'] / 2 / wu['mimofm_multiplications']:.2f}× "
        "(fm FLOPs ÷ 2 vs WMMSE's real multiplications), "
        f"time {fm['seconds_per_precoder']['1'] / wu['seconds_per_precoder']['1']:.2f}× at batch 1 and "
        f"{fm['seconds_per_precoder']['1024'] / wu['seconds_per_precoder']['1024']:.2f}× at batch 1024.",
        "",
    ]
    return out


def summary(f2: dict, f3: dict, spec: FMPaperSpec = PAPER) -> str:
    """The Fig. 2 and Fig. 3 tables (Markdown) with the fm issue's targets, met or not."""
    snrs = list(spec.snrs_db)
    rows = f2["results"]
    sites = sites_of(rows)
    m = rate_table(rows)
    methods = [p for p in dict.fromkeys(r["precoder"] for r in rows) if p != "wmmse"]
    out = [
        "### Maximum sum rate on held-out sites (Fig. 2 analogue)",
        "",
        "Ratio of mean sum rates to WMMSE, test positions, averaged over " + ", ".join(sites) + ".",
        "",
    ] + ratio_table_md(m, methods, sites, snrs)
    out += [
        "",
        "Per site (÷ WMMSE):",
        "",
        "| site | method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
        "|---|---|" + "---|" * len(snrs),
    ]
    for s in sites:
        for p in methods:
            out.append(
                f"| {s} | {p} | "
                + " | ".join(f"{m[(s, x, p)] / m[(s, x, 'wmmse')]:.3f}" for x in snrs)
                + " |"
            )
    above_zf = all(m[(s, x, "fm-zero")] > m[(s, x, "zf")] for s in sites for x in snrs if x <= 20)
    out += ["", f"fm-zero above ZF at every site and SNR ≤ 20 dB: {'yes' if above_zf else 'no'}.", ""]
    r3 = f3["results"]
    out += [
        "### Rate-target mode (Fig. 3 analogue), 20 dB",
        "",
        "Means over test samples; energy E = γ·P_TX + P_RF·(antennas on), P_TX = 20 W, P_RF = 1 W. "
        "QoS / greedy: least energy reaching fm's achieved rates with all antennas / with greedy "
        "switch-off (greedy on the first samples only).",
        "",
        "| site | model | β | asked | got | rate error | error (feasible) | fm W | antennas | QoS W | greedy "
        "W | fm ÷ QoS | fm ÷ greedy | QoS feasible |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in dict.fromkeys(r["site"] for r in r3):
        for label in dict.fromkeys(r["model"] for r in r3):
            for beta in dict.fromkeys(r["beta"] for r in r3):
                sel = {r["method"]: r for r in r3 if (r["site"], r["model"], r["beta"]) == (s, label, beta)}
                fm, q, g = sel["fm"], sel["qos@fm-rates"], sel.get("greedy@fm-rates", {})
                fe = fm.get("rel_rate_error_feasible_mean")
                out.append(
                    f"| {s} | {label} | {beta} | {fm['requested_sum_rate_mean']:.2f} | "
                    f"{fm['achieved_sum_rate_mean']:.2f} | {100 * fm['rel_rate_error_mean']:.1f}% | "
                    f"{'-' if fe is None else f'{100 * fe:.1f}%'} | "
                    f"{fm['energy_w_mean']:.1f} | {fm['antennas_on_mean']:.1f} | "
                    f"{q.get('energy_w_mean', float('nan')):.1f} | "
                    f"{g.get('energy_w_mean', float('nan')):.1f} | "
                    f"{q.get('fm_energy_ratio') or float('nan'):.3f} | "
                    f"{g.get('fm_energy_ratio') or float('nan'):.3f} | "
                    f"{100 * sel['qos@requests']['feasible_fraction']:.0f}% |"
                )
    for label in dict.fromkeys(r["model"] for r in r3):
        fm = [r for r in r3 if r["model"] == label and r["method"] == "fm"]
        err = sum(r["rel_rate_error_mean"] for r in fm) / len(fm)
        fe = [
            r["rel_rate_error_feasible_mean"] for r in fm if r.get("rel_rate_error_feasible_mean") is not None
        ]
        q = [
            r["fm_energy_ratio"]
            for r in r3
            if r["model"] == label and r["method"] == "qos@fm-rates" and r.get("fm_energy_ratio")
        ]
        g = [
            r["fm_energy_ratio"]
            for r in r3
            if r["model"] == label and r["method"] == "greedy@fm-rates" and r.get("fm_energy_ratio")
        ]
        out.append(
            f"\n{label}: mean relative per-user rate error {100 * err:.1f}% over all requests, "
            f"{100 * sum(fe) / max(1, len(fe)):.1f}% over requests QoS can meet (target ≤ 3%); "
            f"energy ÷ greedy switch-off at the same rates {sum(g) / max(1, len(g)):.3f}; "
            f"energy ÷ QoS at the same rates {sum(q) / len(q):.3f} (target ≤ 1.10)."
        )
    return "\n".join(out) + "\n"


def render(folder: Path, out: Path, spec: FMPaperSpec = PAPER) -> tuple[str, list[Path]]:
    """(Markdown, PNGs written into ``out``) from the stored results in ``folder``."""
    f2 = json.loads((folder / "fig2.json").read_text())
    f3 = json.loads((folder / "fig3.json").read_text())
    pngs = [out / "fm_fig2.png", out / "fm_fig3.png"]
    plot_fig2(f2, pngs[0], spec)
    plot_fig3(f3, pngs[1])
    md = summary(f2, f3, spec)
    if (folder / "table1.json").exists():
        md += "\n" + "\n".join(table1_md(json.loads((folder / "table1.json").read_text())))
    if (folder / "table2.json").exists():
        md += "\n" + "\n".join(table2_md(json.loads((folder / "table2.json").read_text())))
    return md, pngs


# ---- the resumable steps ---------------------------------------------------------------------------


def adapt_all(steps: Steps, out: Path, sites, spec: FMPaperSpec) -> dict[str, dict[str, StepResult]]:
    """``{site: {"few": result, "full": result}}``; each result's value holds the adapted ``stem``."""
    done: dict[str, dict[str, StepResult]] = {}
    for cs in sites:
        done[cs.name] = {}
        for label, shots in (("few", spec.few_shots), ("full", "full")):
            d = out / "adapt" / f"{cs.name}-{label}"

            def step(cs=cs, shots=shots, d=d) -> dict:
                t0 = time.perf_counter()
                res = adapt_fm(
                    cs,
                    shots,
                    checkpoint=spec.checkpoint,
                    steps=spec.adapt_steps,
                    out_dir=str(d),
                    progress=False,
                    log=log.info,
                )
                return {
                    "seconds": time.perf_counter() - t0,
                    "similar": res["similar"],
                    "stem": str(d / "last"),
                }

            inputs = {"site": cs.name, "shots": shots, "checkpoint": spec.checkpoint}
            done[cs.name][label] = steps.run(
                f"adapt/{cs.name}-{label}", step, {**inputs, "steps": spec.adapt_steps, "dir": d}
            )
    return done


def scratch_all(steps: Steps, out: Path, files: dict[str, str], model: dict, spec: FMPaperSpec) -> dict:
    """``{site: result}``: an fm trained from scratch on each site's local train positions (max-sum-rate
    phase only); each result's value holds the ``stem``."""
    done = {}
    for name, f in files.items():
        d = out / "scratch" / name

        def step(f=f, d=d) -> dict:
            t0 = time.perf_counter()
            n = spec.scratch_steps
            rec = FMRecipe(sites=[f], model=model, pretrain_steps=n, batch_per_dataset=64, default_batch=128)
            cfg = TrainConfig(steps=n, lr=1e-3, warmup=30, ckpt_every=max(1, n // 4), out_dir=str(d))
            train(rec, cfg, progress=False)
            return {"seconds": time.perf_counter() - t0, "stem": str(d / "last")}

        inputs = {"site": f, "model": model, "steps": spec.scratch_steps, "dir": d}
        done[name] = steps.run(f"scratch/{name}", step, inputs)
    return done


def fig2(sites, variants: dict[str, dict[str, str | None]], spec: FMPaperSpec) -> dict:
    """Fig. 2's rows: every variant and the classical precoders on the sites' test positions."""
    return compare_checkpoints(
        sites,
        list(spec.classical),
        "fm",
        variants,
        spec.eval_config(spec.classical),
        progress=lambda s: log.info("fig2 %s", s),
        also=("fm-refined",),
    )


def fig3(sites, variants: dict[str, dict[str, str | None]], spec: FMPaperSpec) -> dict:
    """Fig. 3's rows: rate-target mode of every variant against QoS power minimization and greedy
    switch-off at the same achieved rates."""
    rows = []
    cfg = TradeoffConfig(
        snr_db=[spec.tradeoff_snr_db],
        samples=spec.tradeoff_samples,
        greedy_samples=spec.greedy_samples,
        positions="test",
    )
    for cs in sites:
        for label, stems in variants.items():
            log.info("fig3 %s %s", cs.name, label)
            res = evaluate_tradeoff([cs], cfg, load_fm(stems[cs.name]))
            for r in res["results"]:
                r["model"] = label
            rows += res["results"]
    return {"config": res["config"], "results": rows, "machine": res["machine"]}


def table1(steps: Steps, out: Path, model: dict, spec: FMPaperSpec) -> dict:
    """Single-dataset models (one training site's LOS or NLOS users) deployed on every dataset's test users.

    Training sites of the catalog (train positions for training, test positions for the table), not the
    held-out sites: the table is about how far one dataset's model travels, as in the paper's Table I.
    """
    files = [str(site_dir() / f"{n}.h5") for n in spec.table1_sites]
    tests = load_datasets(files, 4, split_code=2)
    names = [d.name for d in tests]
    trained = []
    for f in files:
        for mix in ("los", "nlos"):
            name = f"{Path(f).stem}/{mix}"
            if name not in names:
                continue
            d = out / "table1" / name.replace("/", "-")

            def step(f=f, mix=mix, d=d, name=name) -> dict:
                n = spec.scratch_steps
                rec = FMRecipe(
                    sites=[f],
                    model=model,
                    mixes=[mix],
                    pretrain_steps=n,
                    batch_per_dataset=64,
                    default_batch=64,
                )
                train(
                    rec,
                    TrainConfig(steps=n, lr=1e-3, warmup=30, ckpt_every=n, out_dir=str(d)),
                    progress=False,
                )
                return {"name": name, "stem": str(d / "last")}

            inputs = {"site": f, "mix": mix, "model": model, "steps": spec.scratch_steps, "dir": d}
            trained.append(steps.run(f"table1/{name}", step, inputs))

    def evaluate() -> dict:
        hs = {d.name: draw_samples(d, spec.table1_samples, 4, 77, spec.table1_snr_db) for d in tests}
        ref = {n: float(wmmse(h).sum_rate.mean()) for n, h in hs.items()}
        rows = []
        models = {
            **{f"single:{t.value['name']}": t.value["stem"] for t in trained},
            "foundation (default head)": None,
        }
        with torch.no_grad():
            for label, stem in models.items():
                m = load_fm(stem)
                for n, h in hs.items():
                    rate = float(user_rates(h, m(h).w).sum(-1).mean())
                    rows.append({"model": label, "dataset": n, "ratio_to_wmmse": rate / ref[n]})
        return {"snr_db": spec.table1_snr_db, "samples": spec.table1_samples, "datasets": names, "rows": rows}

    inputs = {"samples": spec.table1_samples, "snr_db": spec.table1_snr_db, "files": files}
    return steps.run("table1", evaluate, inputs, upstream=tuple(trained)).value


def table2() -> dict:
    """Complexity at 4 users × 64 antennas: the paper's FLOP formulas, measured FLOPs, time per precoder."""
    reps = []
    for name in ("zf", "rzf", "wmmse", "wmmse-antenna", "fm"):
        log.info("table2 %s", name)
        batches = (1, 16) if name == "wmmse-antenna" else (1, 1024)
        reps.append(complexity(name, 4, 64, batch_sizes=batches, repeats=5).to_dict())
    return {"reports": reps}


def run(out: Path, spec: FMPaperSpec = PAPER) -> Path:
    """Every step of the fm paper analogue into ``out`` (resuming what is cached there); returns the
    path of ``summary.md`` (``fig2.json``, ``fig3.json``, ``table1.json``, ``table2.json`` and the PNGs
    beside it)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out)
    files = heldout_files()
    sites = load_sets(list(files.values()))
    adapted = adapt_all(steps, out, sites, spec)
    arch = load_fm(spec.checkpoint).cfg.to_dict()
    model = {k: v for k, v in arch.items() if k not in ("num_bs_ant", "num_output_heads")}
    scratch = scratch_all(steps, out, files, model, spec)
    variants = {
        "zero": {cs.name: spec.checkpoint for cs in sites},
        "few": {n: s["few"].value["stem"] for n, s in adapted.items()},
        "full": {n: s["full"].value["stem"] for n, s in adapted.items()},
    }
    trained = tuple(r for s in adapted.values() for r in s.values()) + tuple(scratch.values())
    all_variants = {**variants, "scratch": {n: r.value["stem"] for n, r in scratch.items()}}
    ev = {k: v for k, v in asdict(spec).items() if k in ("snrs_db", "classical", "samples", "checkpoint")}
    f2 = steps.run("fig2", lambda: fig2(sites, all_variants, spec), ev, upstream=trained).value
    write_json(out / "fig2.json", f2)
    plot_fig2(f2, out / "fig2.png", spec)
    tr = {k: v for k, v in asdict(spec).items() if k.startswith(("tradeoff", "greedy")) or k == "checkpoint"}
    f3 = steps.run("fig3", lambda: fig3(sites, variants, spec), tr, upstream=trained).value
    write_json(out / "fig3.json", f3)
    plot_fig3(f3, out / "fig3.png")
    t2 = steps.run("table2", table2).value
    write_json(out / "table2.json", t2)
    t1 = table1(steps, out, model, spec)
    write_json(out / "table1.json", t1)
    path = out / "summary.md"
    path.write_text(summary(f2, f3, spec) + "\n" + "\n".join(table1_md(t1) + table2_md(t2)))
    log.info("wrote %s, %s, %s", path, out / "fig2.png", out / "fig3.png")
    return path
