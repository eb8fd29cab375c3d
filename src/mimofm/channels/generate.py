"""Generate catalog sites into site files, resumably (ray tracing is minutes per site on a CPU)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mimofm.channels.catalog import position_split
from mimofm.channels.raytrace import RTSettings, SiteSpec, SiteTracer, iter_site_chunks
from mimofm.channels.store import PartialSite
from mimofm.core.validation import MimofmInputError

__all__ = ["generate_site_file"]


def generate_site_file(
    spec: SiteSpec,
    out_dir: str | Path,
    num_positions: int,
    seed: int = 0,
    settings: RTSettings | None = None,
    layout: str = "random",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, float]:
    """Ray-trace ``spec`` into ``out_dir/<name>.h5``; returns (path, seconds spent in this call).

    Chunks are committed to ``<name>.h5.partial.h5`` as they finish; a killed run called again with the
    same arguments resumes after the last committed chunk and produces the same file. The final file
    appears (atomically) only when every chunk is done, with a seeded train/val/test position split.
    """
    if num_positions < 3:
        raise MimofmInputError(f"`positions` must be >= 3, got {num_positions}")
    settings = settings or RTSettings()
    out = Path(out_dir) / f"{spec.name}.h5"
    t0 = time.perf_counter()
    tracer = SiteTracer(spec, settings)
    meta = tracer.metadata() | {"seed": seed, "layout": layout, "requested_positions": num_positions}
    ps = PartialSite(out, name=spec.name, num_bs_ant=settings.num_bs_ant, meta=meta, overwrite=overwrite)
    if progress:
        progress(ps.num_positions, num_positions)
    for _, h, los, pts in iter_site_chunks(tracer, num_positions, seed, layout, start_chunk=ps.chunks_done):
        ps.append(h, los=los, positions=pts)
        if progress:
            progress(ps.num_positions, num_positions)
    path = ps.finalize(split=position_split(ps.num_positions, seed))
    return path, time.perf_counter() - t0
