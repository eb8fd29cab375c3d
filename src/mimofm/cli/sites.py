"""`mimofm data raytrace` and `mimofm data sites`: the ray-traced site catalog."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mimofm.cli._common import Listing, OutputFormat, clean_errors, console, emit, format_option
from mimofm.core.errors import MimofmInputError

__all__ = ["DEFAULT_SITE_DIR", "raytrace_command", "sites_command", "tasks_command", "tr38901_command"]

DEFAULT_SITE_DIR = Path(os.environ.get("MIMOFM_SITE_DIR", Path.home() / ".cache" / "mimofm" / "sites"))


def _select(site: list[str] | None, split: list[str] | None, all_sites: bool):
    from mimofm.channels.catalog import get_site, sites

    chosen = [get_site(s) for s in (site or [])]
    for sp in split or []:
        chosen += sites(sp)
    if all_sites:
        chosen += sites()
    if not chosen:
        raise MimofmInputError(
            "choose sites with --site NAME (repeatable), --split train|val|heldout or --all"
        )
    return list({s.name: s for s in chosen}.values())


@clean_errors
def raytrace_command(
    site: list[str] | None = typer.Option(None, "--site", help="Catalog site name (repeatable)."),
    split: list[str] | None = typer.Option(
        None, "--split", help="All sites of a split: train, val or heldout (repeatable)."
    ),
    all_sites: bool = typer.Option(False, "--all", help="Every catalog site."),
    positions: int = typer.Option(2000, help="UE positions per site."),
    max_depth: int = typer.Option(5, help="Maximum number of interactions per path (0..10)."),
    samples_per_src: int = typer.Option(200_000, help="Rays shot per BS antenna panel."),
    diffraction: bool = typer.Option(False, help="Include diffraction."),
    diffuse: bool = typer.Option(False, help="Include diffuse reflection."),
    frequency_ghz: float = typer.Option(2.0, help="Carrier frequency in GHz."),
    rows: int = typer.Option(8, help="UPA rows."),
    cols: int = typer.Option(8, help="UPA columns."),
    layout: str = typer.Option("random", help="UE layout: random (radio-map cells) or ring (10° grid)."),
    chunk: int = typer.Option(100, help="Positions per committed chunk (resume granularity)."),
    seed: int = typer.Option(0, help="Seed of positions, rays and the position split."),
    out_dir: Path = typer.Option(DEFAULT_SITE_DIR, help="Folder of the site files (env MIMOFM_SITE_DIR)."),
    overwrite: bool = typer.Option(False, help="Regenerate sites whose file exists."),
) -> None:
    """Ray-trace catalog sites with Sionna RT into HDF5 site files (resumes if interrupted)."""
    from mimofm.channels.generate import generate_site_file
    from mimofm.channels.raytrace import RTSettings

    settings = RTSettings(
        frequency_hz=frequency_ghz * 1e9,
        rows=rows,
        cols=cols,
        max_depth=max_depth,
        samples_per_src=samples_per_src,
        diffraction=diffraction,
        diffuse_reflection=diffuse,
        chunk=chunk,
    )
    settings.validate()
    chosen = _select(site, split, all_sites)
    with Progress(
        TextColumn("{task.description:16s}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as prog:
        for spec in chosen:
            target = out_dir / f"{spec.name}.h5"
            if target.exists() and not overwrite:
                console.print(f"{spec.name}: exists at {target} (use --overwrite to regenerate)")
                continue
            task = prog.add_task(spec.name, total=positions)
            path, secs = generate_site_file(
                spec,
                out_dir,
                positions,
                seed,
                settings,
                layout,
                overwrite,
                progress=lambda done, total, task=task: prog.update(task, completed=done, total=total),
            )
            prog.console.print(f"{spec.name}: {path} · {secs:.0f} s ({secs / positions:.3f} s per position)")


@clean_errors
def sites_command(
    site_dir: Path = typer.Option(DEFAULT_SITE_DIR, help="Folder of generated site files."),
    noise_dbm: float = typer.Option(-94.0, help="Noise power for the median-SNR column (20 MHz, NF 7 dB)."),
    fmt: OutputFormat = format_option(),
) -> None:
    """The site catalog: splits, roles, and for generated sites their LOS ratio and median SNR."""
    from mimofm.channels.bundled import bundled_dir
    from mimofm.channels.catalog import CATALOG, HELDOUT_SCENES
    from mimofm.channels.io import load_channels
    from mimofm.core.linkbudget import LinkBudget

    budget = LinkBudget(noise_dbm=noise_dbm)
    records = []
    for spec in CATALOG.values():
        cands = [site_dir / f"{spec.name}.h5", bundled_dir() / f"{spec.name}.h5"]
        f = next((c for c in cands if c.exists()), None)
        rec = {
            "site": spec.name,
            "scene": spec.scene,
            "split": spec.split,
            "role": spec.role or None,
            "anchor_x_m": spec.anchor_xy[0],
            "anchor_y_m": spec.anchor_xy[1],
            "ue_min_m": spec.d_min_m,
            "ue_max_m": spec.d_max_m,
            "file": None,
            "positions": None,
            "los_ratio": None,
            "los_ratio_is_candidate": False,
            "median_snr_db": None,
            "noise_dbm": noise_dbm,
        }
        if f is not None:
            cs = load_channels(f)
            rec["file"] = "bundled" if f.parent == bundled_dir() else str(f)
            rec["positions"] = cs.num_positions
            rec["los_ratio"] = float(cs.los.float().mean()) if cs.los is not None else None
            rec["median_snr_db"] = budget.median_snr_db(cs.h)
        elif "LOS " in spec.note:
            try:  # the candidate LOS fraction noted when the anchor was chosen
                rec["los_ratio"] = float(spec.note.split("LOS ")[-1].split()[0].rstrip(",;)"))
                rec["los_ratio_is_candidate"] = True
            except ValueError:
                pass
        records.append(rec)
    listing = Listing(
        header=[
            "site",
            "scene",
            "split",
            "role",
            "anchor (x, y)",
            "UE range",
            "file",
            "positions",
            "LOS",
            f"median SNR @ {noise_dbm:g} dBm",
        ],
        title=f"mimofm site catalog · held-out scenes: {', '.join(HELDOUT_SCENES)}",
        caption="LOS with ~ : candidate LOS fraction measured when the anchor was chosen (site not generated "
        "here)",
        no_wrap=False,
    )
    for spec, rec in zip(CATALOG.values(), records):
        generated = rec["file"] is not None
        if generated:
            los = "-" if rec["los_ratio"] is None else f"{rec['los_ratio']:.2f}"
        else:
            los = f"~{spec.note.split('LOS ')[-1]}" if "LOS " in spec.note else "-"
        listing.rows.append(
            [
                spec.name,
                spec.scene,
                spec.split,
                spec.role or "-",
                f"({spec.anchor_xy[0]:g}, {spec.anchor_xy[1]:g})",
                f"{spec.d_min_m:g}-{spec.d_max_m:g} m",
                ("bundled" if rec["file"] == "bundled" else str(Path(rec["file"]).parent))
                if generated
                else "not generated",
                "-" if rec["positions"] is None else str(rec["positions"]),
                los,
                "-" if rec["median_snr_db"] is None else f"{rec['median_snr_db']:.1f} dB",
            ]
        )
    emit(fmt, listing, records, records)


@clean_errors
def tr38901_command(
    task: str = typer.Option(..., help="Task name (mimofm data tasks), e.g. T1."),
    positions: int = typer.Option(1000, help="UE positions."),
    seed: int = typer.Option(0, help="Seed (drops, fading)."),
    normalize: bool = typer.Option(
        False, help="Scale to unit mean gain per antenna (SNR = P/σ² convention)."
    ),
    scenario: str | None = typer.Option(
        None,
        help="Another 38.901 scenario for the task's array and carrier: "
        "uma | umi | rma (e.g. T4's 8×8 array in UMa); the file is named "
        "<task>-<scenario>.",
    ),
    los: str | None = typer.Option(None, help="With --scenario: los | nlos | mixed (default: the task's)."),
    out: Path = typer.Option(..., help="Output file: .h5 (site file) or .npz."),
    overwrite: bool = typer.Option(False, help="Replace an existing file."),
) -> None:
    """Generate a 3GPP TR 38.901 task with Sionna PHY into a site file."""
    from mimofm.channels.catalog import position_split
    from mimofm.channels.io import save_channels_npz
    from mimofm.channels.store import write_site
    from mimofm.channels.tr38901 import generate_task, get_task

    cfg = get_task(task)
    if los is not None and scenario is None:
        raise MimofmInputError("--los goes with --scenario")
    if scenario is not None:
        if los not in (None, "los", "nlos", "mixed"):
            raise MimofmInputError(f"--los must be los, nlos or mixed, got {los!r}")
        flag = cfg.los if los is None else {"los": True, "nlos": False, "mixed": None}[los]
        cfg = replace(cfg, name=f"{cfg.name}-{scenario}", scenario=scenario, los=flag)
        task = cfg.name
    if out.exists() and not overwrite:
        raise MimofmInputError(f"{out} already exists; pass --overwrite to replace it")
    if out.suffix not in (".h5", ".npz"):
        raise MimofmInputError(f"`--out` must end in .h5 or .npz, got {out.name!r}")
    with console.status(
        f"generating {task} ({cfg.scenario}, {cfg.num_bs_ant} antennas, {positions} positions)"
    ):
        cs = generate_task(cfg, positions, seed, normalize=normalize)
    if out.suffix == ".h5":
        write_site(out, cs, split=position_split(cs.num_positions, seed))
    else:
        save_channels_npz(out, cs)
    console.print(
        f"{task}: {out} · {cs.num_positions} positions · LOS {float(cs.los.float().mean()):.2f} · "
        f"{cs.meta['seconds']:.1f} s"
    )


def tasks_command() -> None:
    """The 3GPP task catalog (wifoe-style heterogeneous configurations)."""
    from mimofm.channels.tr38901 import TASKS

    table = Table(title="mimofm 3GPP TR 38.901 tasks")
    for col in ("task", "group", "scenario", "LOS", "array", "N_t", "f (GHz)", "users", "L", "B"):
        table.add_column(col)
    for t in TASKS.values():
        los = "mixed" if t.los is None else ("LOS" if t.los else "NLOS")
        table.add_row(
            t.name,
            t.group,
            {"uma": "UMa", "umi": "UMi", "rma": "RMa"}[t.scenario],
            los,
            f"{t.rows}x{t.cols} {t.array.upper()}",
            str(t.num_bs_ant),
            f"{t.frequency_ghz:g}",
            f"{t.min_ue}-{t.max_ue}",
            str(t.pilot_length),
            str(t.feedback_bits),
        )
    console.print(table)
