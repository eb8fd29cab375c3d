"""Ray-traced sites with Sionna RT: a base station in one of Sionna's built-in city scenes.

A site is a :class:`SiteSpec` (scene, BS anchor, mast, UE distance range) plus :class:`RTSettings`
(frequency, array, solver depth and interaction types). Generation:

1. the BS stands at the anchor ``(x, y)`` at ``max(surface + mast, min_height)`` metres, where the
   surface height (ground or rooftop) comes from a downward ray cast into the scene;
2. UE candidates are drawn (seeded) uniformly over the annulus ``d_min..d_max`` around the BS
   (``layout="random"``), or on the PaPP ring grid (10° steps, ``layout="ring"``); a candidate is kept
   only if it is outdoors (a downward ray cast hits the ground, not a roof) and covered by a Sionna
   radio map of the site at UE height (a cell with non-zero path gain);
3. Sionna RT's ``PathSolver`` computes the paths of a chunk of UEs (synthetic array), the narrowband
   channel at the carrier is the sum of the path coefficients (they include the carrier phase), and
   UEs whose channel is all zero are dropped and replaced by fresh candidates;
4. the LOS flag is geometric: the segment BS -> UE is not blocked by the scene.

Row ``n`` of ``h`` is the channel from the BS antennas to UE ``n`` (``y_n = h[n] @ x``), raw gain with
path loss; the link budget is applied later (:mod:`mimofm.core.linkbudget`).

Sionna RT runs on the CPU through Dr.Jit's LLVM backend: it needs ``libLLVM-19`` (``DRJIT_LIBLLVM_PATH``);
:func:`ensure_llvm` finds it. CPU cost (2 cores, depth 5, 8x8 array): about 0.09 s per UE position.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from glob import glob
from typing import Literal

import numpy as np
import torch

from mimofm.channels.types import ChannelSet
from mimofm.core.validation import MimofmInputError

__all__ = ["SCENES", "RTSettings", "SiteSpec", "SiteTracer", "ensure_llvm", "raytrace_site"]

SCENES = ("munich", "etoile", "florence", "san_francisco", "simple_street_canyon")


def ensure_llvm() -> str:
    """Point Dr.Jit at libLLVM >= 19 (Debian 12's default LLVM 15 makes it abort); returns the path."""
    cur = os.environ.get("DRJIT_LIBLLVM_PATH")
    if cur and os.path.exists(cur):
        return cur
    cands = sorted(
        glob("/usr/lib/*-linux-gnu/libLLVM-19*.so*")
        + glob("/usr/lib/llvm-1[9]/lib/libLLVM*.so*")
        + glob("/usr/lib/llvm-2[0-9]/lib/libLLVM*.so*")
    )
    if not cands:
        raise MimofmInputError(
            "Sionna RT on the CPU needs libLLVM >= 19: install Debian's `libllvm19` "
            "(make bootstrap does it as root) or set DRJIT_LIBLLVM_PATH"
        )
    os.environ["DRJIT_LIBLLVM_PATH"] = cands[0]
    return cands[0]


@dataclass(frozen=True)
class RTSettings:
    """Radio and solver settings (defaults from the fm/papp papers: 8x8 UPA, λ/2, 2 GHz)."""

    frequency_hz: float = 2e9
    rows: int = 8
    cols: int = 8
    spacing_wavelengths: float = 0.5
    pattern: str = "iso"
    polarization: str = "V"
    max_depth: int = 5
    los: bool = True
    specular_reflection: bool = True
    diffuse_reflection: bool = False
    refraction: bool = True
    diffraction: bool = False
    samples_per_src: int = 200_000
    ue_height_m: float = 1.5
    radio_map_cell_m: float = 5.0
    chunk: int = 100

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` for a non-positive frequency, an empty array, ``max_depth`` outside
        0..10, ``chunk`` < 1 or ``samples_per_src`` < 1000."""
        if not (self.frequency_hz > 0 and math.isfinite(self.frequency_hz)):
            raise MimofmInputError(f"`frequency_hz` must be > 0, got {self.frequency_hz}")
        if self.rows < 1 or self.cols < 1:
            raise MimofmInputError(f"`rows`/`cols` must be >= 1, got {self.rows}x{self.cols}")
        if not 0 <= self.max_depth <= 10:
            raise MimofmInputError(f"`max_depth` must be in 0..10, got {self.max_depth}")
        if self.chunk < 1 or self.samples_per_src < 1000:
            raise MimofmInputError("`chunk` must be >= 1 and `samples_per_src` >= 1000")

    @property
    def num_bs_ant(self) -> int:
        """BS antennas ``N_t = rows · cols``."""
        return self.rows * self.cols


@dataclass(frozen=True)
class SiteSpec:
    """One base-station site of the catalog."""

    name: str
    scene: str
    anchor_xy: tuple[float, float]
    mast_m: float = 5.0
    min_height_m: float = 20.0
    yaw_deg: float = 0.0
    d_min_m: float = 50.0
    d_max_m: float = 350.0
    split: Literal["train", "val", "heldout"] = "train"
    role: str = ""
    note: str = ""

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` for an unknown scene or unless ``0 < d_min_m < d_max_m``."""
        if self.scene not in SCENES:
            raise MimofmInputError(f"unknown scene {self.scene!r}; valid: {', '.join(SCENES)}")
        if not 0 < self.d_min_m < self.d_max_m:
            raise MimofmInputError(f"need 0 < d_min_m < d_max_m, got {self.d_min_m}, {self.d_max_m}")


@dataclass
class SiteTracer:
    """A loaded scene with its BS placed; traces chunks of UE positions.

    Keeps the Sionna objects alive between chunks so a long generation pays the scene load once.
    """

    spec: SiteSpec
    settings: RTSettings = field(default_factory=RTSettings)

    def __post_init__(self) -> None:
        self.spec.validate()
        self.settings.validate()
        ensure_llvm()
        import mitsuba as mi  # deferred: Sionna RT / Mitsuba (LLVM) only when a site is traced
        import sionna.rt as rt  # deferred: Sionna RT only when a site is traced

        self._rt = rt
        self._mi = mi
        s = self.settings
        self.scene = rt.load_scene(getattr(rt.scene, self.spec.scene), merge_shapes=True)
        self.scene.frequency = s.frequency_hz
        self.scene.tx_array = rt.PlanarArray(
            num_rows=s.rows,
            num_cols=s.cols,
            vertical_spacing=s.spacing_wavelengths,
            horizontal_spacing=s.spacing_wavelengths,
            pattern=s.pattern,
            polarization=s.polarization,
        )
        self.scene.rx_array = rt.PlanarArray(
            num_rows=1, num_cols=1, pattern="iso", polarization=s.polarization
        )
        x, y = self.spec.anchor_xy
        surf = float(self.surface_z(np.array([x]), np.array([y]))[0])
        self.bs_position = np.array([x, y, max(surf + self.spec.mast_m, self.spec.min_height_m)])
        self.bs_surface_m = surf
        self.scene.add(
            rt.Transmitter(
                name="bs",
                position=self.bs_position.tolist(),
                orientation=[math.radians(self.spec.yaw_deg), 0.0, 0.0],
            )
        )
        self._coverage = None

    # -- geometry helpers ------------------------------------------------------------------------
    def _down(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Distance along a downward ray from ``(x, y, z)`` to the first surface (inf if none)."""
        mi = self._mi
        o = mi.Point3f(
            mi.Float(x.astype(np.float32)), mi.Float(y.astype(np.float32)), mi.Float(z.astype(np.float32))
        )
        si = self.scene.mi_scene.ray_intersect(mi.Ray3f(o, mi.Vector3f(0, 0, -1)))
        return np.array(si.t, dtype=np.float64)

    def surface_z(self, x: np.ndarray, y: np.ndarray, top: float = 2000.0) -> np.ndarray:
        """Height of the first surface (ground, terrain or roof) below ``(x, y)``: ``[n]`` metres."""
        t = self._down(x, y, np.full(len(x), top))
        return top - np.where(np.isfinite(t), t, top)

    def outdoors(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ok [n] bool, ground_z [n])``: the first surface below is the ground (nothing under it).

        A roof has the building's own faces or the ground below it; the ground has nothing below,
        which also holds on hilly terrain.
        """
        z = self.surface_z(x, y)
        below = self._down(x, y, z - 0.05)
        return ~np.isfinite(below), z

    def line_of_sight(self, pts: np.ndarray) -> np.ndarray:
        """``[n, 3]`` UE positions -> ``[n]`` bool: the segment BS -> UE is unobstructed."""
        mi = self._mi
        d = pts - self.bs_position
        dist = np.linalg.norm(d, axis=1)
        d = d / dist[:, None]
        o = self.bs_position.astype(np.float32)
        ray = mi.Ray3f(
            mi.Point3f(*(mi.Float(np.full(len(pts), v, np.float32)) for v in o)),
            mi.Vector3f(*(mi.Float(d[:, i].astype(np.float32)) for i in range(3))),
        )
        ray.maxt = mi.Float((dist - 0.05).astype(np.float32))
        return ~np.array(self.scene.mi_scene.ray_test(ray), dtype=bool)

    def coverage(self) -> tuple[np.ndarray, np.ndarray]:
        """Radio map of the site at UE height: cell centres ``[m, 2]`` with non-zero path gain."""
        if self._coverage is None:
            s, sp = self.settings, self.spec
            size = 2 * sp.d_max_m + 2 * s.radio_map_cell_m
            # measurement plane at UE height above the typical ground of the annulus (hilly scenes)
            rng = np.random.default_rng(0)
            r = np.sqrt(rng.uniform(sp.d_min_m**2, sp.d_max_m**2, 512))
            a = rng.uniform(0, 2 * np.pi, 512)
            out, ground = self.outdoors(
                self.bs_position[0] + r * np.cos(a), self.bs_position[1] + r * np.sin(a)
            )
            z0 = float(np.median(ground[out])) if out.any() else 0.0
            rm = self._rt.RadioMapSolver()(
                self.scene,
                max_depth=min(s.max_depth, 5),
                cell_size=[s.radio_map_cell_m] * 2,
                center=[float(self.bs_position[0]), float(self.bs_position[1]), z0 + s.ue_height_m],
                size=[size, size],
                orientation=[0.0, 0.0, 0.0],
                samples_per_tx=s.samples_per_src,
                los=s.los,
                specular_reflection=s.specular_reflection,
                diffuse_reflection=s.diffuse_reflection,
                refraction=s.refraction,
                seed=0,
            )
            pg = np.array(rm.path_gain)[0]  # [cells_y, cells_x]
            cc = np.array(rm.cell_centers)[..., :2]  # [cells_y, cells_x, 2]
            self._coverage = (cc[pg > 0], np.full(2, s.radio_map_cell_m))
        return self._coverage

    def candidates(self, n: int, rng: np.random.Generator, layout: str = "random") -> np.ndarray:
        """``[m, 3]`` candidate UE positions (m <= n): outdoor, covered, within the annulus."""
        sp, s = self.spec, self.settings
        bx, by = self.bs_position[:2]
        if layout == "ring":
            radii = np.arange(sp.d_min_m, sp.d_max_m + 1e-9, 10.0)
            ang = np.deg2rad(np.arange(0, 360, 10.0))
            rr, aa = np.meshgrid(radii, ang, indexing="ij")
            x, y = bx + (rr * np.cos(aa)).ravel(), by + (rr * np.sin(aa)).ravel()
        elif layout == "random":
            cells, cell = self.coverage()
            d = np.linalg.norm(cells - [bx, by], axis=1)
            cells = cells[(d >= sp.d_min_m) & (d <= sp.d_max_m)]
            if len(cells) == 0:
                raise MimofmInputError(f"site {sp.name!r}: the radio map covers no cell in the UE annulus")
            pick = cells[rng.integers(0, len(cells), 4 * n)] + rng.uniform(-0.5, 0.5, (4 * n, 2)) * cell
            x, y = pick[:, 0], pick[:, 1]
        else:
            raise MimofmInputError(f"unknown layout {layout!r}; valid: random, ring")
        d = np.hypot(x - bx, y - by)
        out, ground = self.outdoors(x, y)
        ok = (d >= sp.d_min_m) & (d <= sp.d_max_m) & out
        pts = np.stack([x[ok], y[ok], ground[ok] + s.ue_height_m], axis=1)
        return pts[:n] if layout == "random" else pts

    # -- tracing -------------------------------------------------------------------------------
    def trace(self, pts: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Channels ``[n, num_bs_ant]`` complex64 and LOS flags ``[n]`` for UE positions ``[n, 3]``."""
        rt, s = self._rt, self.settings
        for name in list(self.scene.receivers):
            self.scene.remove(name)
        for i, p in enumerate(pts):
            self.scene.add(rt.Receiver(name=f"ue{i}", position=[float(v) for v in p]))
        paths = rt.PathSolver()(
            self.scene,
            max_depth=s.max_depth,
            max_num_paths_per_src=10**6,
            samples_per_src=s.samples_per_src,
            synthetic_array=True,
            los=s.los,
            specular_reflection=s.specular_reflection,
            diffuse_reflection=s.diffuse_reflection,
            refraction=s.refraction,
            diffraction=s.diffraction,
            seed=seed,
        )
        a, _ = paths.cir(out_type="numpy")  # [num_rx, 1, num_tx=1, num_bs_ant, num_paths, 1]
        h = a[:, 0, 0, :, :, 0].sum(axis=-1)  # narrowband channel at the carrier: [num_rx, num_bs_ant]
        return h.astype(np.complex64), self.line_of_sight(pts)

    def metadata(self) -> dict:
        """What a site file records about its generation: scene, site spec, settings, BS position and surface
        height (m), Sionna RT version."""
        import sionna.rt as rt  # deferred: Sionna RT only when a site is traced

        return {
            "generator": "mimofm.channels.raytrace (Sionna RT PathSolver, synthetic array)",
            "scene": self.spec.scene,
            "spec": asdict(self.spec),
            "settings": asdict(self.settings),
            "bs_position_m": self.bs_position.tolist(),
            "bs_surface_m": self.bs_surface_m,
            "sionna_rt_version": getattr(rt, "__version__", "unknown"),
        }


def iter_site_chunks(
    tracer: SiteTracer, num_positions: int, seed: int, layout: str = "random", start_chunk: int = 0
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(chunk_index, h [c, N], los [c], positions [c, 3])`` until ``num_positions`` are produced.

    Chunk ``i`` depends only on ``(seed, i)``, so a generation resumed at ``start_chunk`` produces the
    same remaining chunks as an uninterrupted run.
    """
    chunk = tracer.settings.chunk
    ring = tracer.candidates(0, np.random.default_rng(seed), "ring") if layout == "ring" else None
    if ring is not None:
        num_positions = min(num_positions, len(ring))  # the ring grid is finite
    n_chunks = math.ceil(num_positions / chunk)
    for i in range(start_chunk, n_chunks):
        want = min(chunk, num_positions - i * chunk)
        rng = np.random.default_rng([seed, i])
        hs, ls, ps = [], [], []
        got, attempts = 0, 0
        while got < want:
            attempts += 1
            if attempts > 20:
                raise RuntimeError(
                    f"site {tracer.spec.name!r}: too few UEs with a non-zero channel; "
                    f"raise max_depth or check the BS anchor"
                )
            if layout == "ring":
                pts = ring[i * chunk : i * chunk + want] if attempts == 1 else np.empty((0, 3))
                if len(pts) == 0:
                    break
            else:
                pts = tracer.candidates(2 * (want - got) + 8, rng)
            h, los = tracer.trace(pts, seed=int(rng.integers(0, 2**31 - 1)))
            keep = np.abs(h).max(axis=1) > 0
            h, los, pts = h[keep], los[keep], pts[keep]
            take = min(want - got, len(h))
            hs.append(h[:take]), ls.append(los[:take]), ps.append(pts[:take])
            got += take
        yield i, np.concatenate(hs), np.concatenate(ls), np.concatenate(ps)


def raytrace_site(
    spec: SiteSpec,
    num_positions: int,
    seed: int = 0,
    settings: RTSettings | None = None,
    layout: str = "random",
    progress: Callable[[int, int], None] | None = None,
) -> ChannelSet:
    """Trace a whole site in memory (see :mod:`mimofm.channels.store` for the resumable on-disk form)."""
    if num_positions < 1:
        raise MimofmInputError(f"`positions` must be >= 1, got {num_positions}")
    tracer = SiteTracer(spec, settings or RTSettings())
    t0 = time.perf_counter()
    hs, ls, ps = [], [], []
    for _, h, los, pts in iter_site_chunks(tracer, num_positions, seed, layout):
        hs.append(h), ls.append(los), ps.append(pts)
        if progress:
            progress(sum(len(x) for x in hs), num_positions)
    meta = tracer.metadata() | {"seed": seed, "layout": layout, "seconds": time.perf_counter() - t0}
    return ChannelSet(
        name=spec.name,
        h=torch.from_numpy(np.concatenate(hs)),
        los=torch.from_numpy(np.concatenate(ls)),
        positions=torch.from_numpy(np.concatenate(ps)),
        meta=meta,
    )


def with_budget(
    settings: RTSettings, max_depth: int | None = None, samples_per_src: int | None = None
) -> RTSettings:
    """Settings with a smaller solver budget (tests and quick runs)."""
    kw = {}
    if max_depth is not None:
        kw["max_depth"] = max_depth
    if samples_per_src is not None:
        kw["samples_per_src"] = samples_per_src
    return replace(settings, **kw)
