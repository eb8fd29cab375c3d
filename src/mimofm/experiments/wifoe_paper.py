"""The wifoe paper analogue on mimofm's 3GPP 38.901 tasks: spec, resumable jobs, tables and figures.

Table II, Fig. 3, Fig. 4, Table III and Fig. 5 at the **historical operating point** (received SNR
0–20 dB, full-energy pilots), measured by ``benchmarks/wifoe_paper.py``: ``train`` runs the baseline
models (:func:`jobs`, each cached as a step of the run folder), ``report`` evaluates them (one cached
step per table) and :func:`render` re-makes the tables and plots from the stored JSON.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from mimofm._io import write_json
from mimofm.adaptation.wifoe import checkpoint_recipe, finetune_wifoe
from mimofm.channels.tasks import TaskCache
from mimofm.channels.tr38901 import get_task
from mimofm.evaluation.wifoe_eval import (
    checkpoint_pilot_rule,
    classical_rates,
    lmmse_wmmse_rate,
    task_draws,
    wifoe_rate,
)
from mimofm.experiments._steps import Steps
from mimofm.models.wifoe import TaskShape, parameter_counts, wifoe_flops
from mimofm.models.zoo import load_wifoe, shipped_checkpoint
from mimofm.reports.plots import plt, savefig
from mimofm.training.trainer import TrainConfig, train
from mimofm.training.wifoe_recipe import WiFoERecipe

__all__ = [
    "COMMAND",
    "FIG4_VAL_COMMAND",
    "FIG4_VAL_HEADING",
    "PAPER",
    "Fig4ValSpec",
    "WifoePaperSpec",
    "check_historical",
    "default_checkpoint",
    "fig4_lines",
    "fig4_val_jobs",
    "fig4_val_markdown",
    "fig4_val_report",
    "fig4_val_title",
    "fig4_val_train",
    "jobs",
    "mtl_recipe",
    "plot_fig4",
    "plots",
    "render",
    "report",
    "summary",
    "train_shard",
]

log = logging.getLogger(__name__)

COMMAND = (
    "python benchmarks/wifoe_paper.py train --out {folder} --shard i/2 (i = 0, 1); "
    "python benchmarks/wifoe_paper.py report --out {folder}"
)

FIG4_VAL_HEADING = "Fig. 4 with the fine-tuning length chosen on validation"
FIG4_VAL_COMMAND = (
    "python benchmarks/wifoe_fig4_val.py train --shard i/2 --threads 1 (i = 0, 1); "
    "python benchmarks/wifoe_fig4_val.py report"
)


@dataclass(frozen=True)
class WifoePaperSpec:
    """The wifoe paper analogue's tasks, operating points and budgets (defaults: the published run)."""

    pretrain: tuple[str, ...] = tuple(f"T{i}" for i in range(1, 10))
    unseen: tuple[str, ...] = ("T10", "T11", "T12")
    # target task -> source task with the same array and ratios
    dg: dict[str, str] = field(default_factory=lambda: {"G1": "T1", "G2": "T2", "G3": "T3"})
    snrs_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    table3_snrs_db: tuple[float, ...] = (0.0, 10.0, 20.0)
    fig_snr_db: float = 10.0  # Fig. 4 and Fig. 5
    fig3: tuple[str, ...] = ("zf", "wmmse", "lmmse", "dsc", "cep", "stl", "mtl")
    budgets: tuple[int, ...] = (500, 2000, 8000)
    strategies: tuple[str, ...] = ("pretrained", "random", "train", "finetune")
    strategy_labels: dict[str, str] = field(
        default_factory=lambda: {
            "pretrained": "MTL trunk (frozen) + new branch",
            "random": "random trunk (frozen) + new branch",
            "train": "STL (whole model, random init)",
            "finetune": "MTL trunk as init, all trained",
        }
    )
    # Fig. 5: trunk variants of the reference (2 blocks, d 128, FFN 256)
    scale: dict[str, dict] = field(
        default_factory=lambda: {
            "moe-e2": dict(moe=True, num_experts=2, top_k=2),
            "moe-e4": dict(moe=True, num_experts=4, top_k=2),
            "moe-e8": dict(moe=True, num_experts=8, top_k=2),
            "dense-256": dict(moe=False, d_ff=256),
            "dense-512": dict(moe=False, d_ff=512),
            "dense-1024": dict(moe=False, d_ff=1024),
        }
    )
    ft_steps: int = 2000
    scale_steps: int = 800
    samples: int = 200  # test samples per user count K (K = 3..8)


PAPER = WifoePaperSpec()


def _ok(met: bool) -> str:
    return "**met**" if met else "**not met**"


def _avg(doc: dict, method: str, snr: float, spec: WifoePaperSpec = PAPER) -> float:
    return sum(doc["rates"][f"{t}@{snr:g}"][method] for t in spec.pretrain) / len(spec.pretrain)


def plots(t2: dict, f4: dict, f5: dict, fig_dir: Path, spec: WifoePaperSpec = PAPER) -> None:
    """Fig. 3, Fig. 4 and Fig. 5 analogues as PNGs in ``fig_dir``."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8.2, 3.8))
    for m, style in (
        ("wmmse", "k--"),
        ("zf", "k:"),
        ("lmmse", "C7-."),
        ("mtl", "C0-o"),
        ("stl", "C1-s"),
        ("cep", "C2-^"),
        ("dsc", "C3-v"),
    ):
        label = {
            "wmmse": "WMMSE (perfect CSI)",
            "zf": "ZF (perfect CSI)",
            "lmmse": "LMMSE est. from L pilots + WMMSE (unquantized feedback)",
        }.get(m, m.upper())
        ax.plot(spec.snrs_db, [_avg(t2, m, s, spec) for s in spec.snrs_db], style, label=label)
    ax.set_xlabel("beamformed SNR P·E‖h‖²/σ² (dB)"), ax.set_ylabel("sum rate (bit/s/Hz), mean of T1–T9")
    ax.grid(alpha=0.3), ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title("wifoe Fig. 3 analogue (3GPP 38.901 test drops)", fontsize=9)
    fig.tight_layout(), savefig(fig, fig_dir / "wifoe_fig3.png")

    plot_fig4(f4, fig_dir / "wifoe_fig4.png", spec=spec)

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for kind, style in (("moe", "C0-o"), ("dense", "C3-s")):
        names = [n for n in spec.scale if n.startswith(kind)]
        xs = [f5[n]["bs_flops_k8"] / 1e6 for n in names]
        ax.plot(xs, [f5[n]["rate"] for n in names], style, label=f"{kind} scaling")
        for n, x in zip(names, xs):
            ax.annotate(
                f"{f5[n]['trunk_params'] / 1e6:.2f}M",
                (x, f5[n]["rate"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(3, 3),
            )
    ax.set_xlabel("BS-side MFLOPs per sample (K = 8)"), ax.set_ylabel("sum rate at 10 dB, mean of T1–T9")
    (
        ax.grid(alpha=0.3),
        ax.legend(fontsize=8),
        ax.set_title("wifoe Fig. 5 analogue (labels: trunk parameters)", fontsize=9),
    )
    fig.tight_layout(), savefig(fig, fig_dir / "wifoe_fig5.png")


def plot_fig4(f4: dict, path: Path, title: str = "", spec: WifoePaperSpec = PAPER) -> None:
    """Sum rate vs training samples per unseen task, one line per strategy (the budgets it was run at)."""
    fig, axes = plt.subplots(1, len(spec.unseen), figsize=(11, 3.6 if title else 3.4), sharey=False)
    for ax, t in zip(axes, spec.unseen):
        for s, style in zip(spec.strategies, ("C0-o", "C3-v", "C1-s", "C2-^")):
            runs = f4["rates"][t].get(s, {})
            budgets = [b for b in spec.budgets if str(b) in runs]
            if budgets:
                ax.semilogx(budgets, [runs[str(b)] for b in budgets], style, label=spec.strategy_labels[s])
        ax.axhline(f4["rates"][t]["wmmse"], color="k", ls="--", lw=0.8, label="WMMSE (perfect CSI)")
        ax.set_xticks(spec.budgets, [str(b) for b in spec.budgets]), ax.minorticks_off()
        ax.set_title(t, fontsize=9), ax.set_xlabel("training samples"), ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"sum rate at {f4.get('snr_db', 10.0):g} dB (bit/s/Hz)"), axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(), savefig(fig, path)


def fig4_lines(f4: dict, spec: WifoePaperSpec = PAPER) -> list[str]:
    """Fig. 4's table (– where a strategy was not run at a budget) and its two targets."""
    runs = lambda t, s: f4["rates"][t].get(s, {})  # noqa: E731
    lines = [
        "| task | strategy | " + " | ".join(str(b) for b in spec.budgets) + " |",
        "|---|---|" + "---|" * len(spec.budgets),
    ]
    beats, within, points = True, [], 0
    for t in spec.unseen:
        for s in (s for s in spec.strategies if runs(t, s)):
            lines.append(
                f"| {t} | {spec.strategy_labels[s]} | "
                + " | ".join(
                    f"{runs(t, s)[str(b)]:.2f}" if str(b) in runs(t, s) else "–" for b in spec.budgets
                )
                + " |"
            )
        wins = [runs(t, "pretrained")[str(b)] > runs(t, "random")[str(b)] for b in spec.budgets]
        beats, points = beats and all(wins), points + sum(wins)
        if "2000" in runs(t, "train"):
            within.append(runs(t, "pretrained")["2000"] / runs(t, "train")["2000"])
    stl = (
        f"ratios {', '.join(f'{w:.3f}' for w in within)} — {_ok(all(w >= 0.99 for w in within))}"
        if within
        else "STL not run"
    )
    return lines + [
        "",
        f"- frozen pretrained trunk beats a frozen random trunk at every budget: {_ok(beats)} "
        f"({points} of {len(spec.unseen) * len(spec.budgets)} points)",
        f"- within 1% of STL at 2000 samples: {stl}",
        "",
    ]


def _seeds(doc: dict) -> str:
    n = len(doc["seeds"])
    return f"{n} seed" if n == 1 else f"{n} seeds"


def fig4_val_title(doc: dict) -> str:
    """The validated Fig. 4 plot's title."""
    return (
        f"mean of {_seeds(doc)}; fine-tuning length chosen on {doc['val_fraction']:.0%} of each budget held "
        "out "
        f"(best of 20 evaluations, ≤ {doc['max_steps']} steps)"
    )


def fig4_val_markdown(doc: dict, spec: WifoePaperSpec = PAPER) -> str:
    """``benchmarks/wifoe_fig4_val.py``'s Fig. 4: the table (mean over seeds), the targets, each seed's
    rates and the validated step counts."""
    lines = [
        f"Each run trains up to {doc['max_steps']} steps, holds {doc['val_fraction']:.0%} of its budget out "
        "on "
        "positions of its own, and keeps the weights of its best evaluation on them (every "
        f"{doc['max_steps'] // 20} steps); the rates are on the test drops at {doc['snr_db']:g} dB, "
        f"{doc['samples_per_k']} samples per K = 3..8, mean of {_seeds(doc)} (each its own budget samples, "
        "batches and initial branch).",
        "",
    ]
    lines += fig4_lines(doc, spec)
    lines += [
        "Per seed (test-drop rate / steps of the kept weights, chosen on validation):",
        "",
        "| task | strategy | " + " | ".join(str(b) for b in spec.budgets) + " |",
        "|---|---|" + "---|" * len(spec.budgets),
    ]
    for t, per in doc["per_seed"].items():
        for s, runs in per.items():
            cells = [
                " · ".join(f"{r:.2f} / {n}" for r, n in zip(runs[str(b)], doc["best_steps"][t][s][str(b)]))
                if str(b) in runs
                else "–"
                for b in spec.budgets
            ]
            lines.append(f"| {t} | {spec.strategy_labels[s]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(t2: dict, f4: dict, t3: dict, f5: dict, checkpoint: str, spec: WifoePaperSpec = PAPER) -> str:
    """``summary.md``: every table with the wifoe issue's targets, met or not."""
    m10 = {m: _avg(t2, m, 10.0, spec) for m in ("mtl", "stl", "cep", "dsc", "zf", "wmmse", "lmmse")}
    ratio_params = t2["params"]["mtl"]["total"] / t2["params"]["stl"]["total"]
    lines = [
        f"# wifoe paper benchmarks (MTL checkpoint `{checkpoint}`)",
        "",
        "## Table II analogue: sum rate (bit/s/Hz) at 10 dB, test drops, mean over K = 3..8",
        "",
        "LMMSE: classical reference with the task's L random pilots, LMMSE estimation (train-set covariance) "
        "and WMMSE on the estimate, fed back **unquantized**.",
        "",
        "| task | ZF | WMMSE | LMMSE | DSC | CEP | STL | MTL | MTL ÷ WMMSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in spec.pretrain:
        r = t2["rates"][f"{t}@10"]
        lines.append(
            f"| {t} | {r['zf']:.2f} | {r['wmmse']:.2f} | {r['lmmse']:.2f} | {r['dsc']:.2f} | {r['cep']:.2f} "
            "| "
            f"{r['stl']:.2f} | {r['mtl']:.2f} | {r['mtl'] / r['wmmse']:.3f} |"
        )
    lines.append(
        f"| **mean** | {m10['zf']:.2f} | {m10['wmmse']:.2f} | {m10['lmmse']:.2f} | {m10['dsc']:.2f} | "
        f"{m10['cep']:.2f} | {m10['stl']:.2f} | **{m10['mtl']:.2f}** | {m10['mtl'] / m10['wmmse']:.3f} |"
    )
    p = t2["params"]
    lines += [
        "",
        f"Parameters, total over the 9 tasks: MTL {p['mtl']['total'] / 1e6:.2f} M (trunk "
        f"{p['mtl']['trunk'] / 1e6:.2f} M + branches), STL {p['stl']['total'] / 1e6:.2f} M, "
        f"CEP {p['cep']['total'] / 1e6:.2f} M, DSC {p['dsc']['total'] / 1e6:.2f} M. FLOPs per sample (K = 8, "
        f"mean over tasks): "
        + ", ".join(f"{m.upper()} {sum(v.values()) / len(v) / 1e6:.2f} M" for m, v in t2["flops"].items())
        + ".",
        "",
    ]
    lines += [
        "Targets:",
        "",
        f"- MTL mean ≥ STL mean: {m10['mtl']:.2f} vs {m10['stl']:.2f} — {_ok(m10['mtl'] >= m10['stl'])}",
        f"- MTL parameters ≤ 1/4 of STL's: {ratio_params:.3f} — {_ok(ratio_params <= 0.25)}",
        f"- MTL ≥ 90% of perfect-CSI WMMSE: {m10['mtl'] / m10['wmmse']:.3f} — "
        f"{_ok(m10['mtl'] >= 0.9 * m10['wmmse'])} "
        f"(the classical LMMSE reference with the same pilots and unquantized feedback reaches "
        f"{m10['lmmse'] / m10['wmmse']:.3f})",
        f"- MTL ahead of CEP ({m10['cep']:.2f}) and DSC ({m10['dsc']:.2f}): "
        f"{_ok(m10['mtl'] > max(m10['cep'], m10['dsc']))}",
        "",
    ]
    lines += [
        "## Fig. 3 analogue: mean over T1–T9 per SNR (docs/figures/wifoe_fig3.png)",
        "",
        "| SNR (dB) | " + " | ".join(m.upper() for m in spec.fig3) + " |",
        "|---" * (len(spec.fig3) + 1) + "|",
    ]
    for s in spec.snrs_db:
        lines.append(f"| {s:g} | " + " | ".join(f"{_avg(t2, m, s, spec):.2f}" for m in spec.fig3) + " |")
    lines += [
        "",
        "## Fig. 4 analogue: unseen tasks, sum rate at 10 dB vs training samples "
        "(docs/figures/wifoe_fig4.png)",
        "",
    ]
    lines += fig4_lines(f4, spec)
    lines += [
        "## Table III analogue: zero-shot domain generalization to UMa (G1–G3), mean sum rate",
        "",
        "| SNR | method | source–source | source–target | D_sub | D_div |",
        "|---|---|---|---|---|---|",
    ]
    for s, row in t3.items():
        for m in ("mtl", "stl", "cep", "dsc"):
            r = row[m]
            lines.append(
                f"| {s} dB | {m.upper()} | {r['source_source']:.2f} | {r['source_target']:.2f} | "
                f"{r['d_sub']:.2f} | {100 * r['d_div']:.1f}% |"
            )
        lines.append(f"| {s} dB | target–target (STL on G) | {row['target_target_stl']:.2f} | | | |")
    smallest = all(t3[s]["mtl"]["d_div"] < min(t3[s][m]["d_div"] for m in ("stl", "cep", "dsc")) for s in t3)
    lines += [
        "",
        f"- MTL's relative degradation smaller than STL's, CEP's and DSC's at every SNR: {_ok(smallest)}",
        "",
    ]
    lines += [
        "## Fig. 5 analogue: MoE vs dense trunk scaling (docs/figures/wifoe_fig5.png)",
        "",
        "| trunk | experts (top-k) | trunk params | BS MFLOPs (K = 8) | rate @10 dB |",
        "|---|---|---|---|---|",
    ]
    for n, r in f5.items():
        ex = f"{r['experts']} (top-{r['top_k']})" if r["experts"] else "dense"
        lines.append(
            f"| {n} | {ex} | {r['trunk_params'] / 1e6:.3f} M | {r['bs_flops_k8'] / 1e6:.2f} | "
            f"{r['rate']:.2f} |"
        )
    eq = f5["moe-e4"]["rate"] > f5["dense-512"]["rate"]
    lines += [
        "",
        f"- MoE (4 experts, top-2, FFN 256) beats the dense trunk of equal FLOPs (FFN 512): "
        f"{f5['moe-e4']['rate']:.2f} vs {f5['dense-512']['rate']:.2f} — {_ok(eq)}",
        "",
    ]
    return "\n".join(lines)


def render(
    folder: Path, out: Path, checkpoint: str = "shipped wifoe", spec: WifoePaperSpec = PAPER
) -> tuple[str, list[Path]]:
    """(Markdown, PNGs written into ``out``) from the stored results in ``folder``."""
    t2, f4, t3, f5 = (
        json.loads((folder / f).read_text())
        for f in ("table2_fig3.json", "fig4.json", "table3.json", "fig5.json")
    )
    plots(t2, f4, f5, out, spec)
    md, pngs = summary(t2, f4, t3, f5, checkpoint, spec), [out / f"wifoe_fig{i}.png" for i in (3, 4, 5)]
    val = folder / "fig4_val" / "fig4.json"  # benchmarks/wifoe_fig4_val.py's default output, when it was run
    if val.exists():
        doc = json.loads(val.read_text())
        pngs.append(out / "wifoe_fig4_val.png")
        plot_fig4(doc, pngs[-1], fig4_val_title(doc), spec)
        md += (
            f"\n## {FIG4_VAL_HEADING} (wifoe_fig4_val.png)\n\n"
            f"Data: `{val.parent}`, produced by `{FIG4_VAL_COMMAND}`.\n\n"
            + fig4_val_markdown(doc, spec)
            + "\n"
        )
    return md, pngs


# ---- the resumable jobs and the evaluation ---------------------------------------------------------


def mtl_recipe(checkpoint: str) -> tuple[dict, dict]:
    """(model section, train section) of the MTL checkpoint's recipe."""
    card = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    return card["config"]["recipe"]["model"], card["config"]["train"]


def jobs(checkpoint: str, steps: int, spec: WifoePaperSpec = PAPER) -> list[tuple[str, dict, dict]]:
    """``(name, recipe kwargs, train kwargs)`` of every model the report needs:

    * ``stl/T``: single-task learning of the whole model on task T (T1..T9, and G1..G3 for the
      in-domain "target-target" reference of Table III);
    * ``cep/T``: channel estimation at the users (NMSE, first 2/3 of the steps), unquantized feedback of
      the estimate, then a BS precoder trained on the sum rate (same trunk architecture);
    * ``dsc/T``: the MLP-based distributed source coding design (Sohrabi, Attiah & Yu 2021);
    * ``ft/T/strategy/budget`` for the unseen tasks (Algorithm 2), ``spec.ft_steps`` steps each;
    * ``scale/NAME``: MTL pretraining with other trunks for Fig. 5, ``spec.scale_steps`` steps each.
    """
    model, tr = mtl_recipe(checkpoint)
    base_train = {k: tr[k] for k in ("lr", "warmup", "min_lr_ratio", "weight_decay", "grad_clip", "seed")}
    out = []
    for t in [*spec.pretrain, *spec.dg]:
        out.append((f"stl/{t}", dict(tasks=[t], model=model), dict(base_train, steps=steps)))
    for t in spec.pretrain:
        cep = dict(tasks=[t], model={**model, "feedback": "estimate"}, cep_estimation_steps=2 * steps // 3)
        out.append((f"cep/{t}", cep, dict(base_train, steps=steps)))
        out.append(
            (f"dsc/{t}", dict(tasks=[t], model={**model, "decoder": "mlp"}), dict(base_train, steps=steps))
        )
    for t in spec.unseen:
        for s in spec.strategies:
            for b in spec.budgets:
                out.append((f"ft/{t}/{s}/{b}", dict(task=t, budget=b, trunk=s), dict(steps=spec.ft_steps)))
    for name, kw in spec.scale.items():
        warmup = min(base_train["warmup"], spec.scale_steps // 10)
        out.append(
            (
                f"scale/{name}",
                dict(tasks=list(spec.pretrain), model={**model, **kw}),
                dict(base_train, steps=spec.scale_steps, warmup=warmup),
            )
        )
    return out


def run_job(steps: Steps, out: Path, checkpoint: str, name: str, rkw: dict, tkw: dict) -> None:
    """Train job ``name`` into ``out / name`` unless its step is cached."""
    d = out / name

    def step() -> dict:
        t0 = time.perf_counter()
        if name.startswith("ft/"):
            finetune_wifoe(
                rkw["task"],
                rkw["budget"],
                checkpoint=checkpoint,
                trunk=rkw["trunk"],
                steps=tkw["steps"],
                out_dir=str(d),
                progress=False,
            )
        else:
            cfg = TrainConfig(**tkw, log_every=100, ckpt_every=250, out_dir=str(d))
            train(WiFoERecipe(**rkw), cfg, progress=False)
        return {"seconds": time.perf_counter() - t0}

    steps.run(name, step, {"checkpoint": checkpoint, "recipe": rkw, "train": tkw, "dir": d})


def check_historical(checkpoint: str) -> None:
    """Refuse a checkpoint trained with a pilot rule (the calibrated point): this analogue measures the
    historical point."""
    if checkpoint_pilot_rule(checkpoint)[:2] != (None, None):
        raise SystemExit(
            f"{checkpoint} was trained with a pilot rule (the calibrated point); this benchmark measures the "
            "historical point: give --checkpoint of a recipes/wifoe-fullenergy.yaml model, or use "
            "benchmarks/wifoe_operating_point.py"
        )


def train_shard(
    out: Path, checkpoint: str, steps: int, shard: str, only: str = "", spec: WifoePaperSpec = PAPER
) -> int:
    """Train every ``n``-th job starting at ``i`` (``shard``: ``"i/n"``) whose name starts with ``only``;
    returns the number of jobs of the shard."""
    i, n = map(int, shard.split("/"))
    todo = [j for j in jobs(checkpoint, steps, spec) if j[0].startswith(only)][i::n]
    st = Steps(out)
    for name, rkw, tkw in todo:
        run_job(st, Path(out), checkpoint, name, rkw, tkw)
    log.info("shard %s: %d jobs done", shard, len(todo))
    return len(todo)


class Models:
    """Loads the trained models lazily; ``tasks``: the task data of the run, each task read once."""

    def __init__(self, out: Path, checkpoint: str) -> None:
        self.out, self.checkpoint = out, checkpoint
        self.tasks = TaskCache()

    def get(self, name: str):
        stem = self.checkpoint if name == "mtl" else str(self.out / name / "last")
        return load_wifoe(stem)


def _rate(models: Models, name: str, task: str, snr: float, samples: int, branch: str | None = None) -> float:
    draws = task_draws(task, snr, samples, task_cache=models.tasks)
    return wifoe_rate(models.get(name), task, draws, branch)


def table2_fig3(models: Models, spec: WifoePaperSpec) -> dict:
    """Every scheme's sum rate per pretraining task and SNR, parameters and FLOPs (``table2_fig3.json``)."""
    samples = spec.samples
    doc: dict = {"snrs_db": list(spec.snrs_db), "tasks": list(spec.pretrain), "rates": {}, "params": {}}
    doc["flops"] = {}
    for snr in spec.snrs_db:
        log.info("table II / fig 3 at %g dB", snr)
        for t in spec.pretrain:
            row = dict(classical_rates(t, snr, samples, task_cache=models.tasks))
            row["lmmse"] = lmmse_wmmse_rate(t, snr, samples, task_cache=models.tasks)
            row["mtl"] = _rate(models, "mtl", t, snr, samples)
            for m in ("stl", "cep", "dsc"):
                row[m] = _rate(models, f"{m}/{t}", t, snr, samples)
            doc["rates"][f"{t}@{snr:g}"] = row
    mtl = models.get("mtl")
    pc = parameter_counts(mtl)
    doc["params"]["mtl"] = {"trunk": pc["trunk"], "per_task": pc["per_task"], "total": pc["total"]}
    for m in ("stl", "cep", "dsc"):
        per = {t: parameter_counts(models.get(f"{m}/{t}"))["total"] for t in spec.pretrain}
        doc["params"][m] = {"per_task": per, "total": sum(per.values())}
    for m in ("mtl", "stl", "cep", "dsc"):
        doc["flops"][m] = {
            t: wifoe_flops((mtl if m == "mtl" else models.get(f"{m}/{t}")).cfg, TaskShape.of(t), 8)["total"]
            for t in spec.pretrain
        }
    return doc


def fig4(models: Models, spec: WifoePaperSpec) -> dict:
    """Sum rate of each strategy and budget on the unseen tasks (``fig4.json``)."""
    snr, samples = spec.fig_snr_db, spec.samples
    doc: dict = {"snr_db": snr, "budgets": list(spec.budgets), "rates": {}}
    for t in spec.unseen:
        log.info("fig 4 %s", t)
        doc["rates"][t] = {
            s: {str(b): _rate(models, f"ft/{t}/{s}/{b}", t, snr, samples) for b in spec.budgets}
            for s in spec.strategies
        }
        doc["rates"][t]["wmmse"] = classical_rates(t, snr, samples, task_cache=models.tasks)["wmmse"]
    return doc


def table3(models: Models, spec: WifoePaperSpec) -> dict:
    """Zero-shot domain generalization to UMa: source–source, source–target, degradation (``table3.json``)."""
    samples = spec.samples
    doc: dict = {}
    for snr in spec.table3_snrs_db:
        log.info("table III at %g dB", snr)
        row = {}
        for m in ("mtl", "stl", "cep", "dsc"):
            name = (lambda src: "mtl") if m == "mtl" else (lambda src, m=m: f"{m}/{src}")
            ss = [_rate(models, name(src), src, snr, samples) for src in spec.dg.values()]
            st = [_rate(models, name(src), tgt, snr, samples, branch=src) for tgt, src in spec.dg.items()]
            s_avg, t_avg = sum(ss) / len(ss), sum(st) / len(st)
            row[m] = {
                "source_source": s_avg,
                "source_target": t_avg,
                "d_sub": s_avg - t_avg,
                "d_div": (s_avg - t_avg) / s_avg,
            }
        tt = [_rate(models, f"stl/{tgt}", tgt, snr, samples) for tgt in spec.dg]
        row["target_target_stl"] = sum(tt) / len(tt)
        doc[f"{snr:g}"] = row
    return doc


def fig5(models: Models, spec: WifoePaperSpec) -> dict:
    """Rate, parameters and BS FLOPs of each Fig. 5 trunk variant (``fig5.json``)."""
    doc = {}
    for name in spec.scale:
        m = models.get(f"scale/{name}")
        rates = [_rate(models, f"scale/{name}", t, spec.fig_snr_db, spec.samples) for t in spec.pretrain]
        shapes = [TaskShape.of(t) for t in spec.pretrain]
        trunk_flops = sum(wifoe_flops(m.cfg, sh, 8)["bs"] for sh in shapes) / len(shapes)
        doc[name] = {
            "rate": sum(rates) / len(rates),
            "trunk_params": parameter_counts(m)["trunk"],
            "total_params": parameter_counts(m)["total"],
            "bs_flops_k8": trunk_flops,
            "experts": m.cfg.num_experts if m.cfg.moe else 0,
            "top_k": m.cfg.top_k if m.cfg.moe else 0,
        }
    return doc


def report(out: Path, checkpoint: str, fig_dir: Path, label: str, spec: WifoePaperSpec = PAPER) -> str:
    """Evaluate every trained job (one cached step per table, its JSON beside), the plots into ``fig_dir``
    and ``summary.md``; returns the summary (``label``: how it names the MTL checkpoint)."""
    out = Path(out)
    models, st = Models(out, checkpoint), Steps(out)
    base = {"checkpoint": checkpoint, "samples": spec.samples}
    docs = {}
    for fname, make, extra in (
        ("table2_fig3", table2_fig3, {"snrs_db": spec.snrs_db, "tasks": spec.pretrain}),
        ("table3", table3, {"snrs_db": spec.table3_snrs_db, "dg": spec.dg}),
        ("fig5", fig5, {"scale": spec.scale, "snr_db": spec.fig_snr_db}),
        ("fig4", fig4, {"budgets": spec.budgets, "strategies": spec.strategies, "snr_db": spec.fig_snr_db}),
    ):
        docs[fname] = st.run(fname, lambda make=make: make(models, spec), {**base, **extra}).value
        write_json(out / f"{fname}.json", docs[fname])
    t2, t3, f5, f4 = docs["table2_fig3"], docs["table3"], docs["fig5"], docs["fig4"]
    plots(t2, f4, f5, Path(fig_dir), spec)
    text = summary(t2, f4, t3, f5, label, spec)
    (out / "summary.md").write_text(text + "\n")
    return text


def default_checkpoint(checkpoint: str | None) -> str:
    """``checkpoint`` or the shipped wifoe's stem."""
    return checkpoint or str(shipped_checkpoint("wifoe"))


# ---- Fig. 4 with the fine-tuning length chosen on validation (benchmarks/wifoe_fig4_val.py) --------


@dataclass(frozen=True)
class Fig4ValSpec:
    """The validated Fig. 4 runs: up to ``max_steps`` steps, ``val_fraction`` of each budget held out."""

    max_steps: int = 6000
    val_fraction: float = 0.1
    stl_budgets: tuple[int, ...] = (2000,)
    seeds: tuple[int, ...] = (0, 1)
    checkpoint: str | None = None  # pretrained wifoe (None: the shipped one)
    samples: int = 200  # test samples per user count K


def fig4_val_jobs(val: Fig4ValSpec, spec: WifoePaperSpec = PAPER) -> list[tuple[str, str, int, int]]:
    """``(task, strategy, budget, seed)`` of every run: per seed, the frozen-trunk runs, then the slow
    whole-model (STL) ones."""
    out = []
    for seed in val.seeds:
        out += [(t, s, b, seed) for t in spec.unseen for s in ("pretrained", "random") for b in spec.budgets]
        out += [(t, "train", b, seed) for t in spec.unseen for b in val.stl_budgets]
    return out


def _fig4_val_step(out: Path, job: tuple[str, str, int, int], val: Fig4ValSpec) -> tuple[str, Path, dict]:
    task, trunk, budget, seed = job
    d = out / task / trunk / f"{budget}-s{seed}"
    inputs = {"job": list(job), "steps": val.max_steps, "val": val.val_fraction, "checkpoint": val.checkpoint}
    return f"fig4_val/{task}/{trunk}/{budget}/s{seed}", d, {**inputs, "dir": d}


def _check_settings(d: Path, val: Fig4ValSpec) -> None:
    """A run folder made with other ``--steps``/``--val`` is an error: other settings need another folder."""
    last = d / "last.json"
    if not last.exists():
        return
    cfg = json.loads(last.read_text())["config"]
    if (cfg["train"]["steps"], cfg["recipe"]["val_fraction"]) != (val.max_steps, val.val_fraction):
        raise SystemExit(
            f"{d} was run with --steps {cfg['train']['steps']} --val {cfg['recipe']['val_fraction']}; "
            "use another --out for other settings"
        )


def fig4_val_train(out: Path, val: Fig4ValSpec, shard: str = "0/1", spec: WifoePaperSpec = PAPER) -> None:
    """Train every ``n``-th run starting at ``i`` (``shard``: ``"i/n"``), each a cached step."""
    out = Path(out)
    st = Steps(out)
    i, n = map(int, shard.split("/"))
    for job in fig4_val_jobs(val, spec)[i::n]:
        name, d, inputs = _fig4_val_step(out, job, val)
        if st.cached(name, inputs) is not None:
            continue
        _check_settings(d, val)
        task, trunk, budget, seed = job

        def step(task=task, trunk=trunk, budget=budget, seed=seed, d=d) -> dict:
            t0 = time.perf_counter()
            res = finetune_wifoe(
                task,
                budget,
                trunk=trunk,
                steps=val.max_steps,
                val_fraction=val.val_fraction,
                seed=seed,
                out_dir=str(d),
                progress=False,
                checkpoint=val.checkpoint,
            )
            return {"seconds": time.perf_counter() - t0, "best_step": res["metrics"]["best_step"]}

        log.info("%s %s %d seed %d", task, trunk, budget, seed)
        st.run(name, step, inputs)


def fig4_val_report(out: Path, val: Fig4ValSpec, fig_dir: Path, spec: WifoePaperSpec = PAPER) -> str:
    """Test-drop rate of every finished run's kept weights (a cached step per run, collected in
    ``rates.json``), then ``fig4.json`` (rates: mean over the seeds; per_seed, best_steps and seconds: one
    entry per seed), the table (returned, and in ``summary.md``) and the plot."""
    out = Path(out)
    st = Steps(out)
    rec = checkpoint_recipe(default_checkpoint(val.checkpoint))
    keys = ("snr_convention", "pilot_snr_db", "pilot_snr_offset_db", "eval_snr_db")
    point = WiFoERecipe(**{k: rec[k] for k in keys if k in rec})
    snr, conv = point.eval_snr_db, point.snr_convention
    op = point.operating_point(snr)
    tasks = TaskCache()
    rates: dict[str, float] = {}
    doc: dict = {
        "snr_db": snr,
        "operating_point": op.to_dict(),
        "budgets": list(spec.budgets),
        "max_steps": val.max_steps,
        "val_fraction": val.val_fraction,
        "samples_per_k": val.samples,
        "seeds": list(val.seeds),
        "rates": {},
        "per_seed": {},
        "best_steps": {},
        "seconds": {},
    }
    missing = []
    for job in fig4_val_jobs(val, spec):
        task, trunk, budget, seed = job
        name, d, inputs = _fig4_val_step(out, job, val)
        key = f"{task}/{trunk}/{budget}/s{seed}"
        done = st.cached(name, inputs)
        if done is None:
            missing.append(key)
            continue

        def rate(task=task, d=d) -> float:
            draws = task_draws(task, snr, val.samples, convention=conv, task_cache=tasks)
            energy = op.pilot_energy(get_task(task).num_bs_ant)
            return wifoe_rate(load_wifoe(str(d / "best")), task, draws, pilot_energy=energy)

        r = st.run(f"rate/{key}", rate, {"samples": val.samples, "snr_db": snr, "convention": conv}, (done,))
        rates[key] = r.value
        write_json(out / "rates.json", rates)
        for fld, value in (
            ("per_seed", r.value),
            ("best_steps", done.value["best_step"]),
            ("seconds", done.value["seconds"]),
        ):
            doc[fld].setdefault(task, {}).setdefault(trunk, {}).setdefault(str(budget), []).append(value)
    if missing:
        print("\n".join(f"{k}: {v:.3f}" for k, v in rates.items()))
        raise SystemExit(f"{len(missing)} runs not finished ({', '.join(missing)}); train them first")
    for task, per in doc["per_seed"].items():
        doc["rates"][task] = {s: {b: sum(v) / len(v) for b, v in runs.items()} for s, runs in per.items()}
        ref = classical_rates(task, snr, val.samples, convention=conv, task_cache=tasks)
        doc["rates"][task]["wmmse"] = ref["wmmse"]
    write_json(out / "fig4.json", doc)
    plot_fig4(doc, Path(fig_dir) / "wifoe_fig4_val.png", fig4_val_title(doc), spec)
    text = fig4_val_markdown(doc, spec)
    (out / "summary.md").write_text(text + "\n")
    return text
