"""Re-make the wifoe paper's results on mimofm's 3GPP 38.901 tasks (Table II, Fig. 3, Fig. 4,
Table III, Fig. 5 analogues).

    python benchmarks/wifoe_paper.py train [--shard 0/2]   # every baseline model (resumable, shardable)
    python benchmarks/wifoe_paper.py report                # evaluation, plots, summary.md

The multi-task model (MTL) is the shipped wifoe checkpoint (``mimofm train wifoe --recipe
recipes/wifoe.yaml``) or ``--checkpoint``. ``train`` trains, with the shared loop and the same
architecture and budget (``--steps`` per task, the MTL recipe's steps):

* ``stl/T``: single-task learning of the whole model on task T (T1..T9, and G1..G3 for the
  in-domain "target-target" reference of Table III);
* ``cep/T``: channel estimation at the users (NMSE, first 2/3 of the steps), unquantized feedback of
  the estimate, then a BS precoder trained on the sum rate (same trunk architecture);
* ``dsc/T``: the MLP-based distributed source coding design (Sohrabi, Attiah & Yu 2021): the same
  user encoder and B-bit feedback, an MLP at the BS on the concatenated (zero-padded) feedback;
* ``ft/T/strategy/budget`` for the unseen tasks T10..T12 (Algorithm 2): ``pretrained`` (frozen MTL
  trunk, new branch), ``random`` (frozen random trunk, new branch), ``train`` (STL on the budget);
* ``scale/NAME``: MTL pretraining with other trunks — more experts (MoE scaling) or wider dense FFNs
  (dense scaling) — for Fig. 5, all for ``--scale-steps`` steps (the reference MoE trunk included).

Every number is measured on the tasks' **test** drops (never trained on); the models never see a
G-task (UMa) or T10..T12 during pretraining. Each job's checkpoint is kept, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from mimofm._io import write_json  # noqa: E402

PRETRAIN = [f"T{i}" for i in range(1, 10)]
UNSEEN = ["T10", "T11", "T12"]
DG = {"G1": "T1", "G2": "T2", "G3": "T3"}  # target task -> source task with the same array and ratios
SNRS = [0.0, 5.0, 10.0, 15.0, 20.0]
BUDGETS = [500, 2000, 8000]
STRATEGIES = ["pretrained", "random", "train"]
SCALE = {  # Fig. 5: trunk variants of the reference (2 blocks, d 128, FFN 256)
    "moe-e2": dict(moe=True, num_experts=2, top_k=2),
    "moe-e4": dict(moe=True, num_experts=4, top_k=2),
    "moe-e8": dict(moe=True, num_experts=8, top_k=2),
    "dense-256": dict(moe=False, d_ff=256),
    "dense-512": dict(moe=False, d_ff=512),
    "dense-1024": dict(moe=False, d_ff=1024),
}


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _mtl_recipe(checkpoint: str) -> tuple[dict, dict]:
    """(model section, train section) of the MTL checkpoint's recipe."""
    card = json.loads(Path(checkpoint).with_suffix(".json").read_text())
    return card["config"]["recipe"]["model"], card["config"]["train"]


def jobs(checkpoint: str, steps: int, ft_steps: int, scale_steps: int) -> list[tuple[str, dict, dict]]:
    """``(name, recipe kwargs, train kwargs)`` of every model the report needs."""
    model, train = _mtl_recipe(checkpoint)
    base_train = {k: train[k] for k in ("lr", "warmup", "min_lr_ratio", "weight_decay", "grad_clip", "seed")}
    out = []
    for t in PRETRAIN + list(DG):
        out.append((f"stl/{t}", dict(tasks=[t], model=model), dict(base_train, steps=steps)))
    for t in PRETRAIN:
        out.append((f"cep/{t}", dict(tasks=[t], model={**model, "feedback": "estimate"},
                                     cep_estimation_steps=2 * steps // 3), dict(base_train, steps=steps)))
        out.append((f"dsc/{t}", dict(tasks=[t], model={**model, "decoder": "mlp"}), dict(base_train, steps=steps)))
    for t in UNSEEN:
        for s in STRATEGIES:
            for b in BUDGETS:
                out.append((f"ft/{t}/{s}/{b}", dict(task=t, budget=b, trunk=s), dict(steps=ft_steps)))
    for name, kw in SCALE.items():
        out.append((f"scale/{name}", dict(tasks=PRETRAIN, model={**model, **kw}),
                    dict(base_train, steps=scale_steps, warmup=min(base_train["warmup"], scale_steps // 10))))
    return out


def run_job(out: Path, checkpoint: str, name: str, rkw: dict, tkw: dict) -> None:
    from mimofm.adaptation.wifoe import finetune_wifoe
    from mimofm.training.trainer import TrainConfig, train
    from mimofm.training.wifoe_recipe import WiFoERecipe

    d = out / name
    if (d / "done").exists():
        return
    _log(f"train {name}")
    t0 = time.perf_counter()
    if name.startswith("ft/"):
        finetune_wifoe(rkw["task"], rkw["budget"], checkpoint=checkpoint, trunk=rkw["trunk"], steps=tkw["steps"],
                       out_dir=str(d), progress=False)
    else:
        cfg = TrainConfig(**tkw, log_every=100, ckpt_every=250, out_dir=str(d))
        train(WiFoERecipe(**rkw), cfg, progress=False)
    write_json(d / "done", {"seconds": time.perf_counter() - t0})


# ---------------------------------------------------------------------------------------------
# report


class Models:
    """Loads the trained models lazily."""

    def __init__(self, out: Path, checkpoint: str) -> None:
        self.out, self.checkpoint = out, checkpoint

    def get(self, name: str):
        from mimofm.models.loading import load_wifoe

        stem = self.checkpoint if name == "mtl" else str(self.out / name / "last")
        return load_wifoe(stem)


def _rate(models: Models, name: str, task: str, snr: float, samples: int, branch: str | None = None) -> float:
    from mimofm.evaluation.wifoe_eval import task_draws, wifoe_rate

    return wifoe_rate(models.get(name), task, task_draws(task, snr, samples), branch)


def table2_fig3(models: Models, samples: int) -> dict:
    from mimofm.evaluation.wifoe_eval import classical_rates
    from mimofm.models.wifoe import TaskShape, parameter_counts, wifoe_flops

    doc: dict = {"snrs_db": SNRS, "tasks": PRETRAIN, "rates": {}, "params": {}, "flops": {}}
    for snr in SNRS:
        _log(f"table II / fig 3 at {snr:g} dB")
        for t in PRETRAIN:
            row = dict(classical_rates(t, snr, samples))
            row["mtl"] = _rate(models, "mtl", t, snr, samples)
            for m in ("stl", "cep", "dsc"):
                row[m] = _rate(models, f"{m}/{t}", t, snr, samples)
            doc["rates"][f"{t}@{snr:g}"] = row
    mtl = models.get("mtl")
    pc = parameter_counts(mtl)
    doc["params"]["mtl"] = {"trunk": pc["trunk"], "per_task": pc["per_task"], "total": pc["total"]}
    for m in ("stl", "cep", "dsc"):
        per = {t: parameter_counts(models.get(f"{m}/{t}"))["total"] for t in PRETRAIN}
        doc["params"][m] = {"per_task": per, "total": sum(per.values())}
    for m in ("mtl", "stl", "cep", "dsc"):
        doc["flops"][m] = {t: wifoe_flops((mtl if m == "mtl" else models.get(f"{m}/{t}")).cfg, TaskShape.of(t), 8)["total"]
                           for t in PRETRAIN}
    return doc


def fig4(models: Models, samples: int, snr: float = 10.0) -> dict:
    from mimofm.evaluation.wifoe_eval import classical_rates

    doc: dict = {"snr_db": snr, "budgets": BUDGETS, "rates": {}}
    for t in UNSEEN:
        _log(f"fig 4 {t}")
        doc["rates"][t] = {s: {str(b): _rate(models, f"ft/{t}/{s}/{b}", t, snr, samples) for b in BUDGETS}
                           for s in STRATEGIES}
        doc["rates"][t]["wmmse"] = classical_rates(t, snr, samples)["wmmse"]
    return doc


def table3(models: Models, samples: int) -> dict:
    doc: dict = {}
    for snr in (0.0, 10.0, 20.0):
        _log(f"table III at {snr:g} dB")
        row = {}
        for m in ("mtl", "stl", "cep", "dsc"):
            name = (lambda src: "mtl") if m == "mtl" else (lambda src, m=m: f"{m}/{src}")
            ss = [_rate(models, name(src), src, snr, samples) for src in DG.values()]
            st = [_rate(models, name(src), tgt, snr, samples, branch=src) for tgt, src in DG.items()]
            s_avg, t_avg = sum(ss) / len(ss), sum(st) / len(st)
            row[m] = {"source_source": s_avg, "source_target": t_avg, "d_sub": s_avg - t_avg,
                      "d_div": (s_avg - t_avg) / s_avg}
        tt = [_rate(models, f"stl/{tgt}", tgt, snr, samples) for tgt in DG]
        row["target_target_stl"] = sum(tt) / len(tt)
        doc[f"{snr:g}"] = row
    return doc


def fig5(models: Models, samples: int, snr: float = 10.0) -> dict:
    from mimofm.models.wifoe import TaskShape, parameter_counts, wifoe_flops

    doc = {}
    for name in SCALE:
        m = models.get(f"scale/{name}")
        rates = [_rate(models, f"scale/{name}", t, snr, samples) for t in PRETRAIN]
        trunk_flops = sum(wifoe_flops(m.cfg, TaskShape.of(t), 8)["bs"] for t in PRETRAIN) / len(PRETRAIN)
        doc[name] = {"rate": sum(rates) / len(rates), "trunk_params": parameter_counts(m)["trunk"],
                     "total_params": parameter_counts(m)["total"], "bs_flops_k8": trunk_flops,
                     "experts": m.cfg.num_experts if m.cfg.moe else 0, "top_k": m.cfg.top_k if m.cfg.moe else 0}
    return doc


def _avg(doc: dict, method: str, snr: float) -> float:
    return sum(doc["rates"][f"{t}@{snr:g}"][method] for t in PRETRAIN) / len(PRETRAIN)


def plots(t2: dict, f4: dict, f5: dict, fig_dir: Path) -> None:
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for m, style in (("wmmse", "k--"), ("zf", "k:"), ("mtl", "C0-o"), ("stl", "C1-s"), ("cep", "C2-^"), ("dsc", "C3-v")):
        ax.plot(SNRS, [_avg(t2, m, s) for s in SNRS], style, label=m.upper() if m not in ("wmmse", "zf") else
                f"{m.upper()} (perfect CSI)")
    ax.set_xlabel("SNR P/σ² (dB)"), ax.set_ylabel("sum rate (bit/s/Hz), mean of T1–T9")
    ax.grid(alpha=0.3), ax.legend(fontsize=8)
    ax.set_title("wifoe Fig. 3 analogue (3GPP 38.901 test drops)", fontsize=9)
    fig.tight_layout(), fig.savefig(fig_dir / "wifoe_fig3.png", dpi=130), plt.close(fig)

    fig, axes = plt.subplots(1, len(UNSEEN), figsize=(11, 3.4), sharey=False)
    for ax, t in zip(axes, UNSEEN):
        for s, style in zip(STRATEGIES, ("C0-o", "C3-v", "C1-s")):
            ax.semilogx(BUDGETS, [f4["rates"][t][s][str(b)] for b in BUDGETS], style,
                        label={"pretrained": "MTL trunk (frozen) + new branch", "random": "random trunk (frozen)",
                               "train": "STL (whole model)"}[s])
        ax.axhline(f4["rates"][t]["wmmse"], color="k", ls="--", lw=0.8, label="WMMSE (perfect CSI)")
        ax.set_title(t, fontsize=9), ax.set_xlabel("training samples"), ax.grid(alpha=0.3)
    axes[0].set_ylabel("sum rate at 10 dB (bit/s/Hz)"), axes[0].legend(fontsize=7)
    fig.tight_layout(), fig.savefig(fig_dir / "wifoe_fig4.png", dpi=130), plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for kind, style in (("moe", "C0-o"), ("dense", "C3-s")):
        names = [n for n in SCALE if n.startswith(kind)]
        xs = [f5[n]["bs_flops_k8"] / 1e6 for n in names]
        ax.plot(xs, [f5[n]["rate"] for n in names], style, label=f"{kind} scaling")
        for n, x in zip(names, xs):
            ax.annotate(f"{f5[n]['trunk_params'] / 1e6:.2f}M", (x, f5[n]["rate"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("BS-side MFLOPs per sample (K = 8)"), ax.set_ylabel("sum rate at 10 dB, mean of T1–T9")
    ax.grid(alpha=0.3), ax.legend(fontsize=8), ax.set_title("wifoe Fig. 5 analogue (labels: trunk parameters)", fontsize=9)
    fig.tight_layout(), fig.savefig(fig_dir / "wifoe_fig5.png", dpi=130), plt.close(fig)


def summary(t2: dict, f4: dict, t3: dict, f5: dict, checkpoint: str) -> str:
    m10 = {m: _avg(t2, m, 10.0) for m in ("mtl", "stl", "cep", "dsc", "zf", "wmmse")}
    ratio_params = t2["params"]["mtl"]["total"] / t2["params"]["stl"]["total"]
    lines = [f"# wifoe paper benchmarks (MTL checkpoint `{checkpoint}`)", "",
             "## Table II analogue: sum rate (bit/s/Hz) at 10 dB, test drops, mean over K = 3..8", "",
             "| task | ZF | WMMSE | DSC | CEP | STL | MTL | MTL ÷ WMMSE |", "|---|---|---|---|---|---|---|---|"]
    for t in PRETRAIN:
        r = t2["rates"][f"{t}@10"]
        lines.append(f"| {t} | {r['zf']:.2f} | {r['wmmse']:.2f} | {r['dsc']:.2f} | {r['cep']:.2f} | {r['stl']:.2f} | "
                     f"{r['mtl']:.2f} | {r['mtl'] / r['wmmse']:.3f} |")
    lines.append(f"| **mean** | {m10['zf']:.2f} | {m10['wmmse']:.2f} | {m10['dsc']:.2f} | {m10['cep']:.2f} | "
                 f"{m10['stl']:.2f} | **{m10['mtl']:.2f}** | {m10['mtl'] / m10['wmmse']:.3f} |")
    p = t2["params"]
    lines += ["", f"Parameters, total over the 9 tasks: MTL {p['mtl']['total'] / 1e6:.2f} M (trunk "
              f"{p['mtl']['trunk'] / 1e6:.2f} M + branches), STL {p['stl']['total'] / 1e6:.2f} M, "
              f"CEP {p['cep']['total'] / 1e6:.2f} M, DSC {p['dsc']['total'] / 1e6:.2f} M. FLOPs per sample (K = 8, "
              f"mean over tasks): " + ", ".join(f"{m.upper()} {sum(v.values()) / len(v) / 1e6:.2f} M"
                                                for m, v in t2["flops"].items()) + ".", ""]
    ok = lambda b: "**met**" if b else "**not met**"  # noqa: E731
    lines += ["Targets:", "",
              f"- MTL mean ≥ STL mean: {m10['mtl']:.2f} vs {m10['stl']:.2f} — {ok(m10['mtl'] >= m10['stl'])}",
              f"- MTL parameters ≤ 1/4 of STL's: {ratio_params:.3f} — {ok(ratio_params <= 0.25)}",
              f"- MTL ≥ 90% of perfect-CSI WMMSE: {m10['mtl'] / m10['wmmse']:.3f} — {ok(m10['mtl'] >= 0.9 * m10['wmmse'])}",
              f"- MTL ahead of CEP ({m10['cep']:.2f}) and DSC ({m10['dsc']:.2f}): "
              f"{ok(m10['mtl'] > max(m10['cep'], m10['dsc']))}", ""]
    lines += ["## Fig. 3 analogue: mean over T1–T9 per SNR (docs/figures/wifoe_fig3.png)", "",
              "| SNR (dB) | " + " | ".join(m.upper() for m in ("zf", "wmmse", "dsc", "cep", "stl", "mtl")) + " |",
              "|---" * 7 + "|"]
    for s in SNRS:
        lines.append(f"| {s:g} | " + " | ".join(f"{_avg(t2, m, s):.2f}" for m in ("zf", "wmmse", "dsc", "cep", "stl", "mtl")) + " |")
    lines += ["", "## Fig. 4 analogue: unseen tasks, sum rate at 10 dB vs training samples (docs/figures/wifoe_fig4.png)", "",
              "| task | strategy | " + " | ".join(str(b) for b in BUDGETS) + " |", "|---|---|" + "---|" * len(BUDGETS)]
    beats, within = True, []
    for t in UNSEEN:
        for s in STRATEGIES:
            lines.append(f"| {t} | {s} | " + " | ".join(f"{f4['rates'][t][s][str(b)]:.2f}" for b in BUDGETS) + " |")
        beats &= all(f4["rates"][t]["pretrained"][str(b)] > f4["rates"][t]["random"][str(b)] for b in BUDGETS)
        within.append(f4["rates"][t]["pretrained"]["2000"] / f4["rates"][t]["train"]["2000"])
    lines += ["", f"- frozen pretrained trunk beats a frozen random trunk at every budget: {ok(beats)}",
              f"- within 1% of STL at 2000 samples: ratios {', '.join(f'{w:.3f}' for w in within)} — "
              f"{ok(all(w >= 0.99 for w in within))}", ""]
    lines += ["## Table III analogue: zero-shot domain generalization to UMa (G1–G3), mean sum rate", "",
              "| SNR | method | source–source | source–target | D_sub | D_div |", "|---|---|---|---|---|---|"]
    for s, row in t3.items():
        for m in ("mtl", "stl", "cep", "dsc"):
            r = row[m]
            lines.append(f"| {s} dB | {m.upper()} | {r['source_source']:.2f} | {r['source_target']:.2f} | "
                         f"{r['d_sub']:.2f} | {100 * r['d_div']:.1f}% |")
        lines.append(f"| {s} dB | target–target (STL on G) | {row['target_target_stl']:.2f} | | | |")
    smallest = all(t3[s]["mtl"]["d_div"] < min(t3[s][m]["d_div"] for m in ("stl", "cep", "dsc")) for s in t3)
    lines += ["", f"- MTL's relative degradation smaller than STL's, CEP's and DSC's at every SNR: {ok(smallest)}", ""]
    lines += ["## Fig. 5 analogue: MoE vs dense trunk scaling (docs/figures/wifoe_fig5.png)", "",
              "| trunk | experts (top-k) | trunk params | BS MFLOPs (K = 8) | rate @10 dB |", "|---|---|---|---|---|"]
    for n, r in f5.items():
        ex = f"{r['experts']} (top-{r['top_k']})" if r["experts"] else "dense"
        lines.append(f"| {n} | {ex} | {r['trunk_params'] / 1e6:.3f} M | {r['bs_flops_k8'] / 1e6:.2f} | {r['rate']:.2f} |")
    eq = f5["moe-e4"]["rate"] > f5["dense-512"]["rate"]
    lines += ["", f"- MoE (4 experts, top-2, FFN 256) beats the dense trunk of equal FLOPs (FFN 512): "
              f"{f5['moe-e4']['rate']:.2f} vs {f5['dense-512']['rate']:.2f} — {ok(eq)}", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["train", "report"])
    ap.add_argument("--out", default="runs/wifoe_paper")
    ap.add_argument("--checkpoint", default=None, help="MTL wifoe checkpoint stem (default: the shipped one)")
    ap.add_argument("--steps", type=int, default=0, help="steps per baseline model (default: the MTL recipe's)")
    ap.add_argument("--ft-steps", type=int, default=600)
    ap.add_argument("--scale-steps", type=int, default=800)
    ap.add_argument("--samples", type=int, default=200, help="test samples per user count K (K = 3..8)")
    ap.add_argument("--shard", default="0/1", help="i/n: train every n-th job starting at i")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fig-dir", default="docs/figures")
    args = ap.parse_args()
    from mimofm.models.loading import shipped_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = args.checkpoint or str(shipped_checkpoint("wifoe"))
    out = Path(args.out)
    if args.phase == "train":
        steps = args.steps or _mtl_recipe(ckpt)[1]["steps"]
        i, n = map(int, args.shard.split("/"))
        todo = jobs(ckpt, steps, args.ft_steps, args.scale_steps)[i::n]
        for name, rkw, tkw in todo:
            run_job(out, ckpt, name, rkw, tkw)
        _log(f"shard {args.shard}: {len(todo)} jobs done")
        return
    models = Models(out, ckpt)
    t2 = table2_fig3(models, args.samples)
    write_json(out / "table2_fig3.json", t2)
    f4 = fig4(models, args.samples)
    write_json(out / "fig4.json", f4)
    t3 = table3(models, args.samples)
    write_json(out / "table3.json", t3)
    f5 = fig5(models, args.samples)
    write_json(out / "fig5.json", f5)
    plots(t2, f4, f5, Path(args.fig_dir))
    text = summary(t2, f4, t3, f5, args.checkpoint or "shipped wifoe")
    (out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
