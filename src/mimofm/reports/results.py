"""A report of any result JSON that `mimofm eval` and `mimofm bench` write (`mimofm report RESULT.json...`).

Each file's kind is told from its keys (:func:`result_kind`); each kind has a section of Markdown tables, a
sentence that says what the numbers mean, and its plots. :func:`render_results` writes ``report.md``, the PNGs
and ``report.html`` (one standalone file, figures embedded) into a folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from mimofm.core.errors import MimofmInputError
from mimofm.reports.html import write_html
from mimofm.reports.tables import markdown_table

__all__ = ["KINDS", "render_results", "result_kind"]

# kind: (section title, the command that writes it)
KINDS = {
    "eval": ("sum rate of each precoder", "mimofm eval --json"),
    "tradeoff": ("fm rate-target mode against QoS power minimization", "mimofm eval --rate-targets --json"),
    "wifoe": ("wifoe end to end on 3GPP tasks", "mimofm eval --precoder wifoe --task --json"),
    "latency": ("time per precoder", "mimofm bench latency --json"),
    "scaling": ("scaling in antennas and users", "mimofm bench scaling --json"),
    "classical": ("classical precoders beside NumPy and Sionna", "mimofm bench classical --json"),
    "crossover": ("WMMSE's two forms: where they cross", "mimofm bench crossover --json"),
    "cost": ("training cost of checkpoints", "mimofm bench cost --json"),
}


def result_kind(doc: object) -> str | None:
    """The kind of a result JSON (a key of :data:`KINDS`) told from its keys, or None when it is none."""
    if not isinstance(doc, dict):
        return None
    tag = doc.get("mimofm_result")
    if tag in KINDS:
        return tag
    rows = doc.get("results") if isinstance(doc.get("results"), list) else doc.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return None
    keys = set(rows[0])
    if {"precoder", "sum_rate_mean", "site"} <= keys:
        return "eval"
    if {"method", "beta", "requested_sum_rate_mean"} <= keys:
        return "tradeoff"
    if {"task", "rate", "wmmse", "ratio_to_wmmse"} <= keys:
        return "wifoe"
    if {"sweep", "method", "num_bs_ant", "num_ue", "time_ratio_to_wmmse"} <= keys:
        return "scaling"
    if {"form", "num_bs_ant", "num_ue", "seconds_per_precoder"} <= keys:
        return "crossover"
    if {"method", "implementation", "precision", "precoders_per_second"} <= keys:
        return "classical"
    if {"method", "batch", "seconds_per_precoder", "precoders_per_second"} <= keys:
        return "latency"
    if {"name", "steps", "seconds", "quality"} <= keys:
        return "cost"
    return None


def _load(path: Path) -> tuple[dict, str]:
    path = Path(path)
    if not path.is_file():
        raise MimofmInputError(f"{path}: no such result file")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MimofmInputError(f"{path}: not a JSON file ({e})") from None
    kind = result_kind(doc)
    if kind is None:
        keys = ", ".join(sorted(doc)[:8]) if isinstance(doc, dict) else type(doc).__name__
        raise MimofmInputError(
            f"{path}: not a result mimofm can render (top level: {keys or 'empty'}); expected the JSON "
            "written by " + ", ".join(f"`{c}`" for _, c in KINDS.values())
        )
    return doc, kind


def _f(v, fmt: str = ".2f", none: str = "–") -> str:
    return none if v is None else format(v, fmt)


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else None


def _point(r: dict) -> str:
    """A row's operating point: its SNR, or its noise power where the SNR was not set."""
    if r.get("snr_db") is not None:
        return f"{r['snr_db']:g} dB"
    return f"noise {r['noise_dbm']:g} dBm" if r.get("noise_dbm") is not None else "–"


def _machine(doc: dict) -> list[str]:
    m = doc.get("machine")
    if not isinstance(m, dict):
        return []
    parts = [m.get("platform"), m.get("device"), f"torch {m['torch']}" if m.get("torch") else None]
    parts.append(f"{m['threads']} thread(s)" if m.get("threads") is not None else None)
    return [f"Machine: {', '.join(str(p) for p in parts if p)}.", ""]


# each section: (doc, figure stem, out folder) -> (Markdown lines, [(png, caption)])
Section = Callable[[dict, str, Path], tuple[list[str], list[tuple[Path, str]]]]


def _eval(doc: dict, stem: str, out: Path):
    from mimofm.evaluation.plots import plot_complexity_vs_rate, plot_sum_rate_vs_snr, reference_method

    rows = doc["results"]
    cfg = doc.get("config", {})
    pre = list(dict.fromkeys(r["precoder"] for r in rows))
    ref = reference_method(pre)
    lines = [
        f"{cfg.get('num_ue', '?')} users per sample, {cfg.get('samples', '?')} samples per site and point, "
        f"seed {cfg.get('seed', '?')}, SNR convention {cfg.get('snr_convention', '?')}"
        + (f", CSI NMSE {cfg['csi_nmse_db']:g} dB" if cfg.get("csi_nmse_db") is not None else "")
        + ". Mean sum rate (bit/s/Hz) over the same (paired) samples for every precoder"
        + (f"; ratios divide by {ref.upper()}'s mean on those samples." if ref else "."),
        "",
        "**Mean sum rate (bit/s/Hz)**",
        "",
    ]
    points = list(dict.fromkeys((r["site"], _point(r)) for r in rows))
    cell = {(r["site"], _point(r), r["precoder"]): r for r in rows}
    lines += markdown_table(
        ["site", "SNR", *pre],
        [
            [s, p, *(_f(cell[(s, p, x)]["sum_rate_mean"]) if (s, p, x) in cell else "" for x in pre)]
            for s, p in points
        ],
    )
    if ref:
        snrs = list(dict.fromkeys(_point(r) for r in rows))
        base = {(r["site"], _point(r)): r["sum_rate_mean"] for r in rows if r["precoder"] == ref}
        table = []
        for x in pre:
            ratios = []
            for p in snrs:
                v = [
                    r["sum_rate_mean"] / base[(r["site"], p)]
                    for r in rows
                    if r["precoder"] == x and _point(r) == p and base.get((r["site"], p))
                ]
                ratios.append(_f(_mean(v), ".3f"))
            secs = _mean(r.get("seconds_per_precoder") for r in rows if r["precoder"] == x)
            table.append([x, *ratios, _f(None if secs is None else secs * 1e6, ".1f")])
        lines += [
            "",
            f"**Sum rate ÷ {ref.upper()}** (mean over {len({s for s, _ in points})} site(s)) and time per "
            "precoder",
            "",
        ]
        lines += markdown_table(["precoder", *snrs, "µs / precoder"], table)
    lines.append("")
    figs = []
    if any(r["snr_db"] is not None for r in rows):
        figs.append(
            (
                plot_sum_rate_vs_snr(doc, out / f"{stem}_sum_rate.png"),
                "Mean sum rate against the median single-user SNR, one column per site (bands: 95% "
                f"confidence interval); bottom row: each precoder's sum rate ÷ {ref.upper()}'s."
                if ref
                else "Mean sum rate against the median single-user SNR, one column per site.",
            )
        )
    if "wmmse" in pre and any(r.get("seconds_per_precoder") for r in rows):
        snr = max(r["snr_db"] for r in rows if r["snr_db"] is not None)
        figs.append(
            (
                plot_complexity_vs_rate(doc, out / f"{stem}_quality_vs_time.png", snr),
                f"Sum rate ÷ WMMSE at {snr:g} dB against the measured time per precoder (batched), one "
                "point per precoder; up and to the left is better.",
            )
        )
    return lines, figs


def _tradeoff(doc: dict, stem: str, out: Path):
    from mimofm.evaluation.plots import plot_tradeoff

    rows = doc["results"]
    cfg = doc.get("config", {})
    lines = [
        f"fm gets per-user rate requests R*_u and chooses its antennas and powers; {cfg.get('samples', '?')} "
        "samples per site. *Rate error*: mean relative per-user error |r_u − R*_u| / max(R*_u, 0.1) over "
        "all requests, and over the requests that QoS power minimization can meet at all (*feasible*). "
        f"Energy E = γ·P_TX + P_RF·(antennas on) (P_TX = {_f(cfg.get('p_tx_w'), 'g', '?')} W, P_RF = "
        f"{_f(cfg.get('p_rf_w'), 'g', '?')} W). fm ÷ QoS and fm ÷ greedy: fm's energy divided by the least "
        "energy that reaches fm's own achieved rates with every antenna on (QoS) or with greedy antenna "
        "switch-off; below 1, fm spends less. β: requests drawn as β × the sample's WMMSE sum rate "
        "(*fixed*: the given rate targets).",
        "",
    ]
    keys = list(dict.fromkeys((r["site"], r["snr_db"], r["beta"]) for r in rows))
    table = []
    for site, snr, beta in keys:
        sel = {r["method"]: r for r in rows if (r["site"], r["snr_db"], r["beta"]) == (site, snr, beta)}
        fm = sel.get("fm", {})
        err, feas = fm.get("rel_rate_error_mean"), fm.get("rel_rate_error_feasible_mean")
        qreq = sel.get("qos@requests", {}).get("feasible_fraction")
        table.append(
            [
                site,
                f"{snr:g} dB",
                beta,
                _f(fm.get("requested_sum_rate_mean")),
                _f(fm.get("achieved_sum_rate_mean")),
                _f(None if err is None else 100 * err, ".1f") + ("%" if err is not None else ""),
                _f(None if feas is None else 100 * feas, ".1f") + ("%" if feas is not None else ""),
                _f(fm.get("energy_w_mean"), ".1f"),
                _f(fm.get("antennas_on_mean"), ".1f"),
                _f(sel.get("qos@fm-rates", {}).get("fm_energy_ratio"), ".3f"),
                _f(sel.get("greedy@fm-rates", {}).get("fm_energy_ratio"), ".3f"),
                _f(None if qreq is None else 100 * qreq, ".0f") + ("%" if qreq is not None else ""),
            ]
        )
    lines += markdown_table(
        [
            "site",
            "SNR",
            "β",
            "asked (bit/s/Hz)",
            "fm got",
            "rate error",
            "error (feasible)",
            "fm energy (W)",
            "antennas on",
            "fm ÷ QoS",
            "fm ÷ greedy",
            "requests QoS can meet",
        ],
        table,
    )
    lines.append("")
    figs = []
    if any(isinstance(r.get("beta"), (int, float)) and r.get("fm_energy_ratio") is not None for r in rows):
        figs.append(
            (
                plot_tradeoff(doc, out / f"{stem}_energy.png"),
                "fm's energy ÷ the baselines' at fm's own achieved rates against the request level β, one "
                "panel per (site, SNR); below the line at 1, fm spends less energy.",
            )
        )
    return lines, figs


def _wifoe(doc: dict, stem: str, out: Path):
    from mimofm.evaluation.plots import plot_sum_rate_vs_snr

    rows = doc["rows"]
    lines = [
        "wifoe end to end: learned pilots, B-bit feedback and the precoder, on each 3GPP task's test drops; "
        f"mean sum rate (bit/s/Hz) over K = 3..8 users, {doc.get('samples_per_k', '?')} samples per K, SNR "
        f"read as {doc.get('snr_convention', '?')}. ZF and WMMSE are given perfect CSI, so wifoe ÷ WMMSE "
        "is what the pilots, the feedback and the network cost together.",
        "",
    ]
    lines += markdown_table(
        [
            "task",
            "branch",
            "SNR",
            "pilot SNR",
            "wifoe",
            "ZF (perfect CSI)",
            "WMMSE (perfect CSI)",
            "wifoe ÷ WMMSE",
        ],
        [
            [
                r["task"],
                r.get("branch", ""),
                f"{r['snr_db']:g} dB",
                _f(r.get("resolved_pilot_snr_db"), ".1f")
                + (" dB" if r.get("resolved_pilot_snr_db") is not None else ""),
                _f(r["rate"]),
                _f(r.get("zf")),
                _f(r["wmmse"]),
                _f(r["ratio_to_wmmse"], ".3f"),
            ]
            for r in rows
        ],
    )
    lines.append("")
    as_eval = {
        "results": [
            {"site": r["task"], "snr_db": r["snr_db"], "precoder": p, "sum_rate_mean": r[k]}
            for r in rows
            for p, k in (("wifoe", "rate"), ("zf", "zf"), ("wmmse", "wmmse"))
            if r.get(k) is not None
        ]
    }
    figs = []
    if len({r["snr_db"] for r in rows}) > 1:
        figs.append(
            (
                plot_sum_rate_vs_snr(as_eval, out / f"{stem}_wifoe.png"),
                "wifoe end to end beside perfect-CSI ZF and WMMSE against the SNR, one column per task; "
                "bottom row: sum rate ÷ WMMSE.",
            )
        )
    return lines, figs


def _latency(doc: dict, stem: str, out: Path):
    from mimofm.evaluation.plots import plot_latency

    rows = doc["rows"]
    cfg = doc.get("config", {})
    need = doc.get("needed_per_second")
    lines = [
        f"Time per precoder for {cfg.get('num_ue', '?')} users × {cfg.get('num_bs_ant', '?')} antennas: "
        f"median of {cfg.get('repeats', '?')} timed calls ÷ batch; ÷ WMMSE: that time ÷ WMMSE's at the same "
        "batch in the same run"
        + (f"; a cell needs {need:,} precoders/s." if need else ".")
        + " p99: the 99th percentile of single calls (batch 1 only).",
        "",
    ]
    lines += markdown_table(
        ["method", "batch", "µs / precoder", "p99 µs", "÷ WMMSE", "precoders / s", "of a cell's need"],
        [
            [
                r["method"],
                r["batch"],
                _f(r["seconds_per_precoder"] * 1e6, ".1f"),
                _f(None if r.get("p99_seconds") is None else r["p99_seconds"] * 1e6, ".1f"),
                _f(r.get("ratio_to_wmmse"), ".3f"),
                _f(r["precoders_per_second"], ",.0f"),
                _f(None if r.get("budget_fraction") is None else 100 * r["budget_fraction"], ".1f")
                + ("%" if r.get("budget_fraction") is not None else ""),
            ]
            for r in rows
        ],
    )
    lines += [""] + _machine(doc)
    cap = "Time per precoder against the batch size (log-log)"
    if any(r["method"] == "wmmse" for r in rows):
        cap += "; right: the same ÷ WMMSE's time at that batch (below 1: faster than WMMSE)"
    return lines, [(plot_latency(doc, out / f"{stem}_latency.png"), cap + ".")]


def _scaling(doc: dict, stem: str, out: Path):
    rows = doc["rows"]
    cfg = doc.get("config", {})
    lines = [
        f"Each point: {cfg.get('batch', '?')} channels precoded by every method (median of "
        f"{cfg.get('repeats', '?')} batched calls ÷ batch). time ÷ WMMSE and rate ÷ WMMSE on the same "
        "channels in the same run; `-`: the method's weights do not fit that size (timed only).",
        "",
    ]
    lines += markdown_table(
        ["sweep", "N_T", "N_U", "method", "µs / precoder", "time ÷ WMMSE", "rate ÷ WMMSE", "note"],
        [
            [
                r["sweep"],
                r["num_bs_ant"],
                r["num_ue"],
                r["method"],
                _f(r["seconds_per_precoder"] * 1e6, ".1f"),
                _f(r.get("time_ratio_to_wmmse"), ".3f"),
                _f(r.get("ratio_to_wmmse"), ".3f", "-"),
                r.get("note", ""),
            ]
            for r in rows
        ],
    )
    lines += [""] + _machine(doc)
    figs = []
    if {"wifoe_task"} <= set(cfg) and isinstance(doc.get("machine"), dict):
        from mimofm.reports.bench import scaling_figure

        figs.append(
            (
                scaling_figure(doc, out / f"{stem}_scaling.png"),
                "Time per precoder (top, log) and sum rate ÷ WMMSE (bottom) against the antennas N_T (left) "
                "and the users N_U (right).",
            )
        )
    return lines, figs


def _classical(doc: dict, stem: str, out: Path):
    rows = doc["rows"]
    lines = [
        f"{doc.get('num_ue', '?')} users × {doc.get('num_bs_ant', '?')} antennas, channels from "
        f"{doc.get('data', '?')} at {_f(doc.get('snr_db'), 'g', '?')} dB. × NumPy / × Sionna: that "
        "implementation's time ÷ mimofm's in the same run (> 1: mimofm is faster); sum rate (bit/s/Hz) of "
        "what each returned.",
        "",
    ]
    lines += markdown_table(
        ["method", "precision", "implementation", "precoders / s", "× NumPy", "× Sionna", "sum rate"],
        [
            [
                r["method"],
                r["precision"],
                r["implementation"],
                _f(r["precoders_per_second"], ",.0f"),
                _f(r.get("speedup_vs", {}).get("numpy"), ".2f", ""),
                _f(r.get("speedup_vs", {}).get("sionna"), ".2f", ""),
                _f(r.get("sum_rate_mean"), ".4f"),
            ]
            for r in rows
        ],
    )
    return lines + [""] + _machine(doc), []


def _crossover(doc: dict, stem: str, out: Path):
    from mimofm.evaluation.plots import plot_crossover

    by = {(r["num_bs_ant"], r["num_ue"], r["form"]): r["seconds_per_precoder"] for r in doc["rows"]}
    table = [
        [
            n,
            k,
            _f(by[(n, k, "user")] * 1e6, ".1f"),
            _f(by[(n, k, "antenna")] * 1e6, ".1f"),
            _f(by[(n, k, "antenna")] / by[(n, k, "user")], ".2f"),
        ]
        for n, k, f in by
        if f == "user" and (n, k, "antenna") in by
    ]
    lines = [
        f"WMMSE's user-space form (K × K inverses) against its textbook form (N_T × N_T), "
        f"{doc.get('config', {}).get('iterations', '?')} updates each; textbook ÷ user > 1: the user-space "
        "form is faster.",
        "",
        *markdown_table(["N_T", "N_U", "user form µs", "textbook form µs", "textbook ÷ user"], table),
        "",
        *_machine(doc),
    ]
    figs = []
    if isinstance(doc.get("config"), dict) and "iterations" in doc["config"]:
        figs.append(
            (
                plot_crossover(doc, out / f"{stem}_crossover.png"),
                "Time per precoder of WMMSE's two forms against N_T, one colour and marker per N_U (solid, "
                "filled: user-space form; dashed, open: textbook form); where a colour's lines cross, the "
                "forms cost the same.",
            )
        )
    return lines, figs


def _cost(doc: dict, stem: str, out: Path):
    rows = doc["rows"]
    lines = markdown_table(
        ["checkpoint", "steps", "samples", "wall-clock", "quality reached"],
        [
            [
                r["name"],
                f"{r['steps']:,}",
                "?" if r.get("samples") is None else f"{r['samples']:,}",
                f"{r['seconds'] / 60:.1f} min",
                r["quality"],
            ]
            for r in rows
        ],
    )
    return lines + [""], []


_SECTIONS: dict[str, Section] = {
    "eval": _eval,
    "tradeoff": _tradeoff,
    "wifoe": _wifoe,
    "latency": _latency,
    "scaling": _scaling,
    "classical": _classical,
    "crossover": _crossover,
    "cost": _cost,
}


def render_results(paths: list[Path], out: Path, command: str | None = None) -> Path:
    """Write ``out/report.md``, one section per result JSON in ``paths`` (tables and PNG plots), and the
    same page as the standalone ``out/report.html``; returns the Markdown's path.

    Raises :class:`MimofmInputError` naming the file when one is missing, not JSON or of no known kind
    (:func:`result_kind`); nothing is written then."""
    if not paths:
        raise MimofmInputError("give at least one result JSON")
    docs = [(Path(p), *_load(p)) for p in paths]  # every input checked before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# mimofm report",
        "",
        f"Rendered on {time.strftime('%Y-%m-%d %H:%M')} from {len(docs)} result file(s): "
        + ", ".join(f"`{p}` ({k})" for p, _, k in docs)
        + ".",
        "",
    ]
    stems: set[str] = set()
    for path, doc, kind in docs:
        stem, i = path.stem, 1
        while stem in stems:
            i += 1
            stem = f"{path.stem}_{i}"
        stems.add(stem)
        title, made_by = KINDS[kind]
        body, figs = _SECTIONS[kind](doc, stem, out)
        lines += [f"## {path.name}: {title}", "", f"Data: `{path}` (written by `{made_by}`).", "", *body]
        for png, caption in figs:
            lines += [f'![{png.stem}]({png.name} "{caption}")', ""]
    md = out / "report.md"
    md.write_text("\n".join(lines) + "\n")
    write_html(md, command=command)
    return md
