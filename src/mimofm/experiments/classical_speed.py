"""The side-by-side speed study's page tables: ``mimofm bench classical`` (mimofm, the NumPy reference and
Sionna on the same channels) and ``mimofm bench crossover`` (WMMSE's two forms)."""

from __future__ import annotations

from mimofm.reports.tables import markdown_table

__all__ = ["render_crossover", "render_speed"]

TARGETS = {  # issue targets at 64 × 4, batch 1024, one core, float32: ratio to the NumPy reference
    "zf-wf": 1.0,
    "rzf": 1.0,
    "wmmse": 3.0,
    "wmmse-3": 1.0,
}


def _fmt_rate(r: dict | None) -> str:
    return "" if r is None else f"{r['precoders_per_second']:,.0f}"


def render_speed(doc: dict) -> str:
    """One table per precision: precoders/s of each implementation, mimofm's speed-up over each reference
    (their time ÷ mimofm's, measured in the same run) and the mean sum rates."""
    rows = {(r["method"], r["implementation"], r["precision"]): r for r in doc["rows"]}
    methods = list(dict.fromkeys(r["method"] for r in doc["rows"]))
    out = []
    m = doc["machine"]
    out.append(
        f"{doc['num_ue']} users × {doc['num_bs_ant']} antennas, batch {doc['rows'][0]['batch']}, "
        f"{doc['data']} at {doc['snr_db']:g} dB; mimofm and Sionna on {m.get('device', 'cpu')}, NumPy on the "
        f"CPU; {m['threads']} CPU thread(s), {m['processor']}, torch "
        f"{m['torch']}, NumPy {m['numpy']}; median of {doc['config']['repeats']} timed calls after a warm-up."
    )
    for prec in dict.fromkeys(r["precision"] for r in doc["rows"]):
        header = [
            "method",
            "mimofm /s",
            "NumPy /s",
            "× NumPy",
            "Sionna /s",
            "× Sionna",
            "target × NumPy",
            "rate mimofm",
            "rate NumPy",
            "rate Sionna",
        ]
        body = []
        for meth in methods:
            ours = rows.get((meth, "mimofm", prec))
            if ours is None:
                continue
            npy, sio = rows.get((meth, "numpy", prec)), rows.get((meth, "sionna", prec))
            sp = ours.get("speedup_vs", {})
            body.append(
                [
                    meth,
                    _fmt_rate(ours),
                    _fmt_rate(npy),
                    f"{sp['numpy']:.2f}" if "numpy" in sp else "",
                    _fmt_rate(sio),
                    f"{sp['sionna']:.2f}" if "sionna" in sp else "",
                    f"≥ {TARGETS[meth]:g}" if meth in TARGETS and prec == "single" else "",
                    f"{ours['sum_rate_mean']:.4f}",
                    "" if npy is None else f"{npy['sum_rate_mean']:.4f}",
                    "" if sio is None else f"{sio['sum_rate_mean']:.4f}",
                ]
            )
        out += ["", f"**{prec} precision** ({'complex64' if prec == 'single' else 'complex128'} input)", ""]
        out += markdown_table(header, body)
    return "\n".join(out)


def render_crossover(doc: dict) -> str:
    """N_T × N_U table of the textbook form's time ÷ the user-space form's (> 1: the user form is faster),
    with both times in µs per precoder."""
    by = {(r["num_bs_ant"], r["num_ue"], r["form"]): r["seconds_per_precoder"] for r in doc["rows"]}
    ants = sorted({n for n, _, _ in by})
    users = sorted({k for _, k, _ in by})
    header = ["N_T \\ N_U", *[str(k) for k in users]]
    body = []
    for n in ants:
        cells = [str(n)]
        for k in users:
            if (n, k, "user") not in by:
                cells.append("")
                continue
            u, a = by[(n, k, "user")], by[(n, k, "antenna")]
            cells.append(f"{a / u:.1f} ({u * 1e6:.0f} / {a * 1e6:.0f} µs)")
        body.append(cells)
    cfg = doc["config"]
    batches = {}
    for r in doc["rows"]:
        batches.setdefault(r["num_bs_ant"], r["batch"])
    sizes = ", ".join(f"{b} at N_T = {n}" for n, b in sorted(batches.items()))
    return (
        f"Cells: time of the textbook N_T × N_T form ÷ time of the user-space K × K form, both for "
        f"{cfg['iterations']} WMMSE updates (user / textbook µs per precoder); {doc['machine']['threads']} "
        f"thread(s). Batch per call: {sizes} (the textbook form's N_T³ work sets it; at the small batches "
        "the user form's time is mostly per-call overhead, so its advantage there is understated). The forms "
        "cost the same where N_U ≈ N_T.\n\n" + "\n".join(markdown_table(header, body))
    )
