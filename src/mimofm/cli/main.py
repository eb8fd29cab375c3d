"""The `mimofm` command."""

from __future__ import annotations

import typer

from mimofm.cli._common import console
from mimofm.cli.adapt import adapt_command
from mimofm.cli.bench import bench_app
from mimofm.cli.data import data_app
from mimofm.cli.eval import eval_command
from mimofm.cli.export import export_app
from mimofm.cli.quickstart import quickstart_command
from mimofm.cli.report import report_command
from mimofm.cli.sites import raytrace_command, sites_command, tasks_command, tr38901_command
from mimofm.cli.train import train_command

__all__ = ["app", "main_callback", "precoders_command"]

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="mimofm: deep-learning precoding for the massive-MIMO downlink.",
)


def _version(value: bool) -> None:
    if value:
        from mimofm import __version__  # deferred: only `--version` needs it

        typer.echo(f"mimofm {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the mimofm version and exit."
    ),
) -> None:
    """mimofm: deep-learning precoding for the massive-MIMO downlink."""


app.command("eval")(eval_command)
app.command("quickstart")(quickstart_command)
app.command("train")(train_command)
app.command("adapt")(adapt_command)
app.command("report")(report_command)
app.add_typer(data_app, name="data", help="Channel data: ray-traced sites, 3GPP tasks, import/export, info.")
app.add_typer(
    bench_app, name="bench", help="Benchmarks: latency (PyTorch, ONNX Runtime) and the real-time budget."
)
app.add_typer(export_app, name="export", help="Export neural precoders for deployment (ONNX).")
data_app.command("raytrace")(raytrace_command)
data_app.command("sites")(sites_command)
data_app.command("tr38901")(tr38901_command)
data_app.command("tasks")(tasks_command)


@app.command("precoders")
def precoders_command() -> None:
    """List the available precoders and bounds."""
    from mimofm.models.zoo import precoder_catalog

    for name, (kind, description) in precoder_catalog().items():
        console.print(f"[bold]{name:14s}[/] {kind:9s} {description}")


if __name__ == "__main__":
    app()
