"""`mimofm bench latency`: time per precoder (PyTorch and ONNX Runtime) and the real-time budget."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mimofm._io import write_json
from mimofm.cli._common import clean_errors, console

bench_app = typer.Typer(add_completion=False, no_args_is_help=True)


@bench_app.command("latency")
@clean_errors
def latency_command(
    methods: str = typer.Option("zf,rzf,wmmse,fm,fm-onnx,papp,papp-onnx", help="Contenders (registry names, fm-onnx, papp-onnx)."),
    batches: str = typer.Option("1,1024", help="Batch sizes."),
    repeats: int = typer.Option(5, help="Timed calls per point (median)."),
    quick: bool = typer.Option(False, help="Batches 1 and 64, 2 repeats (seconds)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
) -> None:
    """Time per precoder at each batch, as a ratio to WMMSE in the same run, and precoders/s vs a cell's need."""
    from mimofm.cli._common import parse_floats
    from mimofm.evaluation.latency import LatencyConfig, latency

    cfg = LatencyConfig(methods=[m.strip() for m in methods.split(",") if m.strip()],
                        batches=[int(b) for b in parse_floats(batches, "--batches")], repeats=repeats)
    if quick:
        cfg.batches, cfg.repeats = [1, 64], 2
    with console.status("timing") as status:
        res = latency(cfg, progress=lambda m: status.update(m))
    table = Table(title=f"time per precoder · {cfg.num_ue} users × {cfg.num_bs_ant} antennas · CPU, "
                        f"{res['machine']['threads']} threads")
    for c in ("method", "batch", "µs / precoder", "÷ WMMSE", "precoders / s", "of a cell's need"):
        table.add_column(c, justify="right")
    for r in res["rows"]:
        table.add_row(r["method"], str(r["batch"]), f"{r['seconds_per_precoder'] * 1e6:.1f}", f"{r['ratio_to_wmmse']:.3f}",
                      f"{r['precoders_per_second']:.0f}", f"{100 * r['budget_fraction']:.1f}%")
    table.caption = (f"need: {res['needed_per_second']:,} precoders/s per cell (100 MHz NR, 30 kHz SCS, 4-RB "
                     "subbands, 0.5 ms slots); the ONNX contenders include the float64 K×K step forming W")
    console.print(table)
    if json_out:
        write_json(json_out, res)
        console.print(f"results written to [bold]{json_out}[/]")
