"""Channel files: the single entry point for every ``--data`` file, and ``.npz`` export.

:func:`load_channels` reads every supported format into a :class:`ChannelSet` and validates it the same
way whatever the format (the rules are documented in docs/data.md):

* ``.h5`` / ``.hdf5`` — a mimofm site file (root attribute ``mimofm_site_schema``; see
  :mod:`mimofm.channels.store`), otherwise a plain HDF5 import: root datasets ``H`` complex
  ``[num_positions, num_bs_ant]`` (or ``H_real`` + ``H_imag`` real pairs, or a compound dtype with
  fields ``real``/``imag`` or ``r``/``i``), optional ``los``, ``positions``, ``split``, optional root
  attribute ``meta_json``. A MATLAB v7.3 file renamed to ``.h5`` is recognised and read as ``.mat``.
* ``.npz`` — arrays ``H``, optional ``los``, ``positions``, ``split``, ``meta_json`` (a JSON string).
* ``.npy`` — just ``H``.
* ``.mat`` — MATLAB v5 (``save -v7`` and older, read with :func:`scipy.io.loadmat`) or v7.3 (HDF5,
  read with h5py). Variables ``H`` (complex), optional ``los``, ``positions``, ``split``,
  ``meta_json`` (char). MATLAB is column-major, so a v7.3 file stores every array transposed:
  arrays of v7.3 files are transposed back on read, so ``H`` is saved from MATLAB as the natural
  ``num_positions × num_bs_ant`` matrix. MATLAB row/column vectors (``1×P`` or ``P×1``) are
  accepted for ``los`` and ``split``.

Other layouts — DeepMIMO v4, Sionna (PHY and RT), QuaDRiGa, batches of users ``[B, K, N_t]``, subcarrier
axes — and other variable names are read through :mod:`mimofm.channels.layouts` with the options of
:class:`~mimofm.channels.layouts.ImportOptions` (``--var``, ``--subcarrier``, ``--layout``); every import is
explained by one line (:class:`~mimofm.channels.layouts.ReadAs`), logged at INFO level by
:func:`load_channels` and returned by :func:`read_channels` (see docs/byo-channels.md).

Shape contract of the result: ``h`` complex ``[num_positions, num_bs_ant]`` (row n is the channel from
the BS antennas to the UE at position n: ``y_n = H[n] @ x``; raw gains with path loss, or normalized
gains), ``los`` bool ``[num_positions]``, ``positions`` float64 ``[num_positions, 2 or 3]`` (metres),
``split`` int8 ``[num_positions]`` (0 train, 1 val, 2 test). Nothing is ever unpickled: ``.npz`` and
``.npy`` are read with ``allow_pickle=False``, and MATLAB cell arrays, structs, objects, sparse
matrices and HDF5 object references are rejected. Every problem raises
:class:`~mimofm.core.validation.MimofmInputError` naming the file and the problem.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from mimofm._io import atomic_path
from mimofm.channels.formats import GAIN_FLOOR_DB, detect_format, file_error
from mimofm.channels.layouts import (
    CHANNEL_NAMES,
    ImportOptions,
    LayoutPlan,
    ReadAs,
    detect_layout,
    parse_layout,
    plan_layout,
    reduce_block,
)
from mimofm.channels.limits import (
    MAX_INFLATE_RATIO,
    ImplausibleSizeError,
    check_budget,
    check_ratio,
    format_bytes,
    parse_memory,
)
from mimofm.channels.sources import ArraySource, Container, MemorySource, open_container
from mimofm.channels.store import SiteReader, write_site_blocks
from mimofm.channels.types import SPLIT_NAMES, ChannelSet
from mimofm.core.validation import MimofmInputError

__all__ = [
    "BLOCK_BYTES",
    "ChannelStream",
    "ImportOptions",
    "export_npz",
    "import_site",
    "load_channel_files",
    "load_channels",
    "open_channels",
    "read_channels",
    "save_channels_npz",
    "site_info",
]

log = logging.getLogger(__name__)

# Variables read from imported files; anything else in the file is ignored.
_IMPORT_NAMES = ("H", "H_real", "H_imag", "los", "positions", "split", "meta_json")
# Also read: the other channel names of the layouts, Sionna's path delays (they mark path coefficients)
# and DeepMIMO's receiver positions (used as `positions` when the file has none).
_EXTRA_NAMES = ("tau", "rx_pos")


def _wanted(var: str | None) -> tuple[str, ...]:
    """The variables to read from a file: the import names, the channel names and ``var``."""
    return tuple(dict.fromkeys(_IMPORT_NAMES + CHANNEL_NAMES + _EXTRA_NAMES + ((var,) if var else ())))


# ---------------------------------------------------------------------------------------------
# MATLAB v5: parsed in a child process (scipy's reader can crash on malformed files), sizes checked first

_MAT5_REJECT = {
    "sparse": "a MATLAB sparse matrix; save it full",
    "struct": "a MATLAB struct; store a numeric matrix",
    "object": "a MATLAB cell array or object (object dtype); store a numeric matrix",
}


def _child_limits(max_memory: int):
    """Cap the child's address space: a safety net behind the declared-size checks."""

    def limit() -> None:
        import resource  # deferred: POSIX only, and only in the child

        cap = max(4 * 2**30, 3 * max_memory + 2 * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return limit


def _read_mat5(path: Path, names: tuple[str, ...], max_memory: int) -> Container:
    """Parse a MATLAB v5 file in a child process, its variables' declared sizes checked before reading."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vars.npz"
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mimofm.channels._mat5_child",
                    str(path),
                    str(out),
                    ",".join(names),
                    str(max_memory),
                    str(MAX_INFLATE_RATIO),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                preexec_fn=_child_limits(max_memory) if sys.platform != "win32" else None,
            )
        except subprocess.TimeoutExpired:
            raise file_error(
                path, "the MATLAB v5 reader did not finish within 120 s (malformed file?)"
            ) from None
        if proc.returncode < 0:
            raise file_error(
                path,
                f"is not a readable MATLAB v5 .mat file (the reader crashed with signal {-proc.returncode})",
            )
        try:
            report = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise file_error(
                path,
                f"is not a readable MATLAB v5 .mat file (reader exit {proc.returncode}"
                + (", out of memory)" if "MemoryError" in proc.stderr else ")"),
            ) from None
        if "budget" in report:
            check_budget(path, report["budget"]["what"], report["budget"]["need"], max_memory)
        if "implausible" in report:
            check_ratio(path, "its variables", report["implausible"]["declared"], path.stat().st_size)
        if "error" in report:
            raise file_error(path, f"is not a readable MATLAB v5 .mat file ({report['error']})")
        rejected = {}
        for key, kind in report.get("rejected", {}).items():
            msg = _MAT5_REJECT.get(kind, f"a MATLAB {kind}, not a numeric array")
            err = file_error(path, f"`{key}` is {msg}")
            if key in _IMPORT_NAMES:
                raise err
            rejected[key] = err
        with np.load(out, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    sources = {}
    for key in names:
        if key not in raw:
            continue
        v = raw[key]
        if key == "meta_json":
            if v.dtype.kind != "U":
                raise file_error(path, f"`meta_json` must be a char array holding JSON, got dtype {v.dtype}")
            v = np.array("".join(v.ravel().tolist()))
        sources[key] = MemorySource(key, v)
    listing = [(n, shape, cls) for n, shape, cls in report.get("variables", [])]
    return Container(sources, listing, rejected)


# ---------------------------------------------------------------------------------------------
# the channel array: which variable, which layout (mimofm.channels.layouts)


def _describe_listing(raw: Container) -> str:
    items = [f"{n} {list(shape)} {kind}" for n, shape, kind in raw.listing[:12]]
    more = f", ... ({len(raw.listing) - 12} more)" if len(raw.listing) > 12 else ""
    return ", ".join(items) + more if items else "nothing"


def _pick_var(path: Path, raw: Container, var: str | None) -> str:
    """The name of the channel array: ``var``, else ``H`` (or ``H_real``/``H_imag``), else the one of
    :data:`~mimofm.channels.layouts.CHANNEL_NAMES` in the file."""
    if var is not None:
        if var == "H" and (raw.has("H_real") or raw.has("H_imag")):
            return "H"
        if not raw.has(var):
            raise file_error(path, f"has no variable `{var}` (`--var`); found: {_describe_listing(raw)}")
        return var
    if raw.has("H") or raw.has("H_real") or raw.has("H_imag"):
        return "H"
    found = [n for n in CHANNEL_NAMES if raw.has(n)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise file_error(
            path,
            f"holds several channel arrays ({', '.join(f'`{n}`' for n in found)}); "
            "pass --var NAME to pick one",
        )
    raise file_error(
        path,
        f"has no `H` array (nor {', '.join(CHANNEL_NAMES[1:])}); found: {_describe_listing(raw)}; "
        "pass --var NAME for the array that holds the channel",
    )


class _PairSource(ArraySource):
    """``H_real`` + ``1j * H_imag``, read block by block."""

    def __init__(self, re: ArraySource, im: ArraySource):
        ctype = np.complex64 if (re.dtype == np.float32 and im.dtype == np.float32) else np.complex128
        axes = tuple(a for a in re.stream_axes if a in im.stream_axes)
        super().__init__("H", re.shape, ctype, axes)
        self.re, self.im = re, im

    def _combine(self, re: np.ndarray, im: np.ndarray) -> np.ndarray:
        return (re.astype(self.dtype) + 1j * im.astype(self.dtype)).astype(self.dtype)

    def read_all(self) -> np.ndarray:
        """Both parts, combined."""
        return self._combine(self.re.read_all(), self.im.read_all())

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        """A block of both parts, combined."""
        return self._combine(self.re.read(axis, start, stop), self.im.read(axis, start, stop))


def _channel_source(path: Path, raw: Container, var: str) -> ArraySource:
    """The source of the channel array ``var`` (``H_real`` + ``H_imag`` combined), dtype checked."""
    if var == "H" and not raw.has("H"):
        if not raw.has("H_real") or not raw.has("H_imag"):
            raise file_error(path, "has only one of `H_real`/`H_imag`; both are needed")
        re, im = raw.get("H_real"), raw.get("H_imag")
        for k, a in (("H_real", re), ("H_imag", im)):
            if a.dtype.kind not in "fiu":
                raise file_error(path, f"`{k}` must be real numeric, got dtype {a.dtype}")
        if re.shape != im.shape:
            raise file_error(path, f"`H_real` {list(re.shape)} and `H_imag` {list(im.shape)} differ in shape")
        return _PairSource(re, im)
    if var == "H" and (raw.has("H_real") or raw.has("H_imag")):
        raise file_error(path, "has both `H` and `H_real`/`H_imag`; keep one form")
    return raw.get(var)


def _aux_lengths(arrays: dict) -> tuple[int, ...]:
    """Lengths of ``los``/``split`` (MATLAB vectors squeezed) and the rows of ``positions``."""
    out = []
    for k in ("los", "split"):
        v = arrays.get(k)
        if v is not None and (v.ndim == 1 or (v.ndim == 2 and 1 in v.shape)):
            out.append(int(v.size))
    pos = arrays.get("positions")
    if pos is not None and pos.ndim == 2:
        out.append(int(pos.shape[0]))
    return tuple(out)


def _reshape_aux(arrays: dict, position_shape: tuple[int, ...], repeat: int) -> None:
    """Flatten ``los``/``split``/``positions`` laid out like the position axes, and repeat each entry
    ``repeat`` times (``--subcarrier all``); arrays of other shapes are left for validation to refuse."""
    p0 = math.prod(position_shape)
    for k in ("los", "split"):
        v = arrays.get(k)
        if v is not None and v.ndim >= 1 and v.size == p0:
            v = v.reshape(p0)  # [n...] -> [positions]
            arrays[k] = np.repeat(v, repeat) if repeat > 1 else v
    pos = arrays.get("positions")
    if pos is not None and pos.ndim >= 2 and pos.shape[-1] in (2, 3) and pos.size == p0 * pos.shape[-1]:
        pos = pos.reshape(p0, pos.shape[-1])  # [n..., 2|3] -> [positions, 2|3]
        arrays["positions"] = np.repeat(pos, repeat, axis=0) if repeat > 1 else pos


_AUX_NAMES = ("los", "positions", "split", "rx_pos", "meta_json")
_MAX_META_BYTES = 16 * 2**20


def _read_aux(path: Path, raw: Container, h: ArraySource, var: str, budget: int) -> dict[str, np.ndarray]:
    """Read ``los``, ``positions``, ``split``, ``rx_pos`` and ``meta_json``, their declared sizes checked
    first: at most three entries per entry of the channel array, all within the budget."""
    limit = 3 * h.size + 4096
    found = {}
    for k in _AUX_NAMES:
        if not raw.has(k):
            continue
        if k == "rx_pos" and k in raw.rejected:
            continue  # optional: used only when it fits
        src = raw.get(k)
        if k == "meta_json":
            if src.nbytes > _MAX_META_BYTES:
                raise ImplausibleSizeError(
                    f"channel file {str(path)!r}: `meta_json` declares {format_bytes(src.nbytes)}; "
                    f"metadata is at most {format_bytes(_MAX_META_BYTES)}"
                )
        elif src.size > limit:
            raise ImplausibleSizeError(
                f"channel file {str(path)!r}: `{k}` declares {list(src.shape)} ({src.size} entries), more "
                f"than three per entry of the channel array `{var}` {list(h.shape)}; refused before reading"
            )
        found[k] = src
    check_budget(path, "its los/positions/split", sum(s.nbytes for s in found.values()), budget)
    return {k: s.read_all() for k, s in found.items()}


def _validate_aux(path: Path, arrays: dict, n: int, h_shape: tuple) -> dict:
    """``los`` bool ``[n]``, ``positions`` float64 ``[n, 2|3]``, ``split`` int8 ``[n]`` (or None each) and
    ``meta`` (a dict), validated."""
    los = arrays.get("los")
    if los is not None:
        v = _vector(los, n)
        ok = v is not None and (
            v.dtype == bool or np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)
        )
        if not ok:
            raise file_error(
                path,
                f"`los` must be bool/int of shape [{n}], got {los.dtype} {list(los.shape)}"
                + _hint(h_shape, los.size),
            )
        if v.dtype != bool and not np.isin(v, (0, 1)).all():
            raise file_error(path, "`los` values must be 0/1 (or bool)")
        los = v.astype(bool)

    pos = arrays.get("positions")
    if pos is not None:
        if (
            pos.ndim != 2
            or pos.shape[0] != n
            or pos.shape[1] not in (2, 3)
            or not (np.issubdtype(pos.dtype, np.floating) or np.issubdtype(pos.dtype, np.integer))
        ):
            hint = _hint(h_shape, pos.shape[0]) if pos.ndim == 2 else ""
            raise file_error(
                path,
                f"`positions` must be float of shape [{n}, 2|3], got {pos.dtype} {list(pos.shape)}{hint}",
            )
        if not np.isfinite(pos).all():
            raise file_error(path, "`positions` has NaN/Inf entries")
        pos = np.ascontiguousarray(pos, dtype=np.float64)

    split = arrays.get("split")
    if split is not None:
        v = _vector(split, n)
        if v is None or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
            raise file_error(
                path, f"`split` must be int of shape [{n}], got {split.dtype} {list(split.shape)}"
            )
        if not np.isin(v, (0, 1, 2)).all():
            raise file_error(path, "`split` values must be 0 (train), 1 (val) or 2 (test)")
        split = v.astype(np.int8)

    meta = {}
    if "meta_json" in arrays:
        try:
            meta = json.loads(str(arrays["meta_json"]))
        except json.JSONDecodeError as e:
            raise file_error(path, f"`meta_json` is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise file_error(path, f"`meta_json` must hold a JSON object, got {type(meta).__name__}")
    return {"los": los, "positions": pos, "split": split, "meta": meta}


def _vector(a: np.ndarray, n: int) -> np.ndarray | None:
    """Accept ``[n]``, ``[1, n]`` and ``[n, 1]`` (MATLAB vectors); return ``[n]``, or None if the shape is
    wrong."""
    if a.ndim == 2 and 1 in a.shape:
        # [1, n] or [n, 1] -> [n]
        a = a.reshape(-1)
    return a if a.shape == (n,) else None


def _hint(h_shape: tuple, a_len: int) -> str:
    """A hint when an auxiliary array's length matches the second axis of ``H`` instead of the first."""
    if len(h_shape) == 2 and a_len == h_shape[1] != h_shape[0]:
        return (
            f"; its length matches `H`'s second axis ({h_shape[1]}): is `H` stored transposed as "
            "[num_bs_ant, num_positions]? Store it as [num_positions, num_bs_ant]"
        )
    return ""


# ---------------------------------------------------------------------------------------------
# validation shared by every format, block by block


def _where(row: int, position_shape: tuple, repeat: int) -> str:
    """Row ``row`` of ``H``, with its index in the source's position axes when they were flattened."""
    text = f"{row}"
    if len(position_shape) > 1 or repeat > 1:
        idx = [int(i) for i in np.unravel_index(row // repeat, position_shape)]
        text += f" = source position {idx}" + (f", subcarrier {row % repeat}" if repeat > 1 else "")
    return text


_GAIN_HOW = (
    "mimofm sets the SNR with --snr-db (the noise power is chosen so that the site-median gain "
    "‖h‖² reaches that SNR) or with --noise-dbm (the raw gains with --tx-power-dbm and --system-loss-db)"
)


# source bytes read per block when a file is streamed
BLOCK_BYTES = 32 * 2**20


class ChannelStream:
    """An open channel file, checked from its header and metadata, whose ``H`` is read in row blocks.

    Open one with :func:`open_channels` (a context manager). Attributes, known before any of ``H`` is read:
    ``path``, ``format``, ``name``, ``meta``, ``read_as`` (None for a site file), ``shape`` (``H``'s
    ``[num_positions, num_bs_ant]``), ``dtype`` (complex64 or complex128), ``los``, ``positions``,
    ``split`` (validated numpy arrays or None), ``header`` (a site file's schema/checksum/created; else
    all None) and ``max_memory`` (the budget, bytes).

    :meth:`blocks` yields the rows of ``H`` block by block, each validated (finite, no all-zero row); after
    the last block it checks what needs every row (the gain floor for imports, the checksum for site
    files) and fills :attr:`gains` (``‖h‖²`` per position, float64). A consumer that writes the blocks out
    must commit only after the iteration ends without an error.
    """

    def __init__(self, path: Path, fmt: str, max_memory: int):
        self.path, self.format, self.max_memory = path, fmt, max_memory
        self.read_as: ReadAs | None = None
        self.header = {"schema": None, "checksum_sha256": None, "checksum_ok": None, "created_utc": None}
        self.gains: np.ndarray | None = None
        self._raw: Container | None = None
        self._site: SiteReader | None = None
        self._src: ArraySource | None = None
        self._plan: LayoutPlan | None = None
        self.verify_checksum = True

    # -- opening -----------------------------------------------------------------------------

    def _open_site(self, name: str | None) -> None:
        self._site = r = SiteReader(self.path, self.max_memory)
        self.name, self.meta, self.shape = name or r.name, r.meta, r.shape
        self.dtype = np.dtype(np.complex64)
        self.los, self.positions, self.split = (r.aux.get(k) for k in ("los", "positions", "split"))
        self.header = r.header

    def _open_import(self, name: str | None, options: ImportOptions) -> None:
        path, fmt = self.path, self.format
        names = _wanted(options.var)
        if fmt == "mat-v5":
            self._raw = raw = _read_mat5(path, names, self.max_memory)
        else:
            self._raw = raw = open_container(path, fmt, names, _IMPORT_NAMES)
        var = "H" if fmt == "npy" else _pick_var(path, raw, options.var)
        h = _channel_source(path, raw, var)
        if h.dtype.hasobject:
            raise file_error(path, f"`{var}` has an object dtype; store a plain complex array")
        if h.dtype.kind != "c":
            hint = (
                " (for real and imaginary parts stored apart, name them `H_real` and `H_imag`)"
                if var == "H"
                else ""
            )
            if h.ndim >= 1 and h.shape[-1] == 2:
                hint += "; a last axis of 2 holding real/imag parts: save `x[..., 0] + 1j * x[..., 1]`"
            raise file_error(path, f"`{var}` must be complex, got dtype {h.dtype}{hint}")
        if h.ndim < 2:
            raise file_error(
                path, f"`{var}` must have shape [num_positions, num_bs_ant], got {list(h.shape)}"
            )
        if min(h.shape) == 0:
            raise file_error(path, f"`{var}` is empty: shape {list(h.shape)}")
        arrays = _read_aux(path, raw, h, var, self.max_memory)
        if options.layout is not None:
            layout = parse_layout(path, options.layout, var, h.shape)
        else:
            layout = detect_layout(
                path,
                var,
                h.shape,
                matlab=fmt in ("mat-v5", "mat-v7.3"),
                has_tau=raw.has("tau"),
                subcarrier_given=options.subcarrier is not None,
                aux_lengths=_aux_lengths(arrays),
            )
        plan = plan_layout(path, var, h.shape, layout, options.subcarrier)
        rx_pos = arrays.pop("rx_pos", None)  # DeepMIMO's receiver positions, used when they fit
        if (
            "positions" not in arrays
            and rx_pos is not None
            and rx_pos.ndim == 2
            and rx_pos.shape[1] in (2, 3)
            and rx_pos.shape[0] == math.prod(plan.position_shape)
        ):
            arrays["positions"] = rx_pos
        if layout.labels != ("n", "ntx") or plan.repeat > 1:
            _reshape_aux(arrays, plan.position_shape, plan.repeat)
        aux = _validate_aux(path, arrays, plan.read_as.shape[0], plan.read_as.shape)
        self.los, self.positions, self.split, self.meta = (
            aux["los"],
            aux["positions"],
            aux["split"],
            aux["meta"],
        )
        self.name = name or self.meta.get("name") or path.stem
        self._src, self._plan, self.read_as = h, plan, plan.read_as
        self.shape = plan.read_as.shape
        self.dtype = np.dtype(np.complex64 if h.dtype == np.complex64 else np.complex128)

    # -- memory ------------------------------------------------------------------------------

    def _aux_bytes(self) -> int:
        return sum(a.nbytes for a in (self.los, self.positions, self.split) if a is not None)

    def _block_plan(self) -> tuple[int, int, bool]:
        """(entries of the block axis per block, source bytes per block, whether the source streams)."""
        if self._site is not None:
            rows = self._site.block_rows(BLOCK_BYTES)
            return rows, rows * self.shape[1] * self.dtype.itemsize, True
        src, axis = self._src, self._plan.block_axis
        entry = max(1, src.nbytes // src.shape[axis])
        per = max(1, min(src.shape[axis], BLOCK_BYTES // entry))
        return per, per * entry, axis in src.stream_axes

    def memory_needed(self, whole: bool) -> int:
        """Bytes held at once: reading in blocks (``whole`` False), or holding all of ``H`` (True)."""
        _, block, streams = self._block_plan()
        need = self._aux_bytes() + 8 * self.shape[0] + 4 * block
        if not streams:
            need += self._src.nbytes
        if whole:
            need += self.shape[0] * self.shape[1] * self.dtype.itemsize
        return need

    def check_memory(self, whole: bool) -> None:
        """Raise :class:`~mimofm.channels.limits.MemoryBudgetError` if :meth:`memory_needed` exceeds the
        budget."""
        what = f"`{self.read_as.var if self.read_as else 'H'}` read as {list(self.shape)} {self.dtype}"
        hint = " (`mimofm data import` and `mimofm data info` read in blocks and need less)" if whole else ""
        if not whole and self._src is not None and self._plan.block_axis not in self._src.stream_axes:
            hint = (
                f" (this {self.format} array is read whole: its positions axis "
                f"{self._plan.block_axis} cannot be read in blocks; a C-order .npy/.npz with positions "
                "first, or HDF5, streams)"
            )
        check_budget(self.path, what, self.memory_needed(whole), self.max_memory, hint)

    # -- reading -----------------------------------------------------------------------------

    def blocks(self, progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, block)``: the rows of ``H`` in order, ``block`` ``[rows, num_bs_ant]`` of
        :attr:`dtype`, validated; ``progress(rows_done)`` after each block. Raises after the last block if
        a check over all rows fails (see the class docstring)."""
        self.check_memory(whole=False)
        n = self.shape[0]
        self.gains = gains = np.empty(n, dtype=np.float64)
        if self._site is not None:
            for r0, block in self._site.blocks(self._site.block_rows(BLOCK_BYTES)):
                gains[r0 : r0 + block.shape[0]] = _gain(block)
                yield r0, block
                if progress is not None:
                    progress(r0 + block.shape[0])
            if self.verify_checksum and not self.header["checksum_ok"]:
                raise file_error(
                    self.path,
                    "checksum mismatch: the content differs from what was written "
                    "(corrupted or edited); re-generate or re-import the site",
                )
            return
        plan, src = self._plan, self._src
        axis, (per, _, streams) = plan.block_axis, self._block_plan()
        reader = src if streams else MemorySource(src.name, src.read_all())
        for e0 in range(0, src.shape[axis], per):
            block = reduce_block(plan, reader.read(axis, e0, min(e0 + per, src.shape[axis])))
            r0 = e0 * plan.rows_per_entry
            self._check_block(block, r0)
            gains[r0 : r0 + block.shape[0]] = _gain(block)
            yield r0, block
            if progress is not None:
                progress(r0 + block.shape[0])
        self._check_gains(gains)

    def _check_block(self, h: np.ndarray, r0: int) -> None:
        """Finite entries, no all-zero position (rows ``r0 ...`` of ``H``)."""
        var, plan = self.read_as.var, self._plan
        more = "at least " if r0 + h.shape[0] < self.shape[0] else ""
        finite = np.isfinite(h)
        if not finite.all():
            rows = np.flatnonzero(~finite.all(axis=1))
            raise file_error(
                self.path,
                f"`{var}` has {more}{int((~finite).sum())} NaN/Inf entries in {rows.size} positions (first: "
                f"{_where(r0 + int(rows[0]), plan.position_shape, plan.repeat)}); every entry must be "
                "finite: fix or drop those positions",
            )
        zero = ~np.abs(h).any(axis=1)
        if zero.any():
            hint = (
                " (DeepMIMO gives users without paths an all-zero channel: keep the users with num_paths > 0)"
                if "DeepMIMO" in self.read_as.what
                else ""
            )
            first = _where(r0 + int(np.argmax(zero)), plan.position_shape, plan.repeat)
            raise file_error(
                self.path,
                f"`{var}` has {more}{int(zero.sum())} all-zero rows (first: {first}){hint}; "
                "no precoder can serve a position without a channel: remove them",
            )

    def _check_gains(self, g: np.ndarray) -> None:
        """Gains large enough for an SNR to mean something: the median and every position."""
        var, plan = self.read_as.var, self._plan
        median_db = _median_db(g)
        if median_db < GAIN_FLOOR_DB:
            raise file_error(
                self.path,
                f"`{var}` has a median gain of {median_db:.1f} dB (‖h‖² over positions), below "
                f"{GAIN_FLOOR_DB:g} dB: too small for an SNR to mean anything. {_GAIN_HOW}; no radio link "
                f"loses {-median_db:.0f} dB (free space at 100 GHz over 100 km: 172 dB). Check that H holds "
                "linear complex amplitudes (not dB or powers), or rescale it: with --snr-db a constant scale "
                f"does not change the results, e.g. multiply H by {10 ** (-median_db / 20):.0e} for a median "
                "gain of 0 dB",
            )
        low = g < 10.0 ** (GAIN_FLOOR_DB / 10.0)
        if low.any():
            first = int(np.argmax(low))
            with np.errstate(divide="ignore"):  # an underflowed gain of 0 is -inf dB
                first_db = float(10.0 * np.log10(g[first]))
            raise file_error(
                self.path,
                f"`{var}` has {int(low.sum())} positions with a gain below {GAIN_FLOOR_DB:g} dB (first: "
                f"{_where(first, plan.position_shape, plan.repeat)}, {first_db:.1f} dB; "
                f"median {median_db:.1f} dB): no SNR serves them ({_GAIN_HOW}); remove those positions",
            )

    # -- results -----------------------------------------------------------------------------

    def channel_set(self, h: np.ndarray) -> ChannelSet:
        """The :class:`ChannelSet` of this file with ``h`` (all of ``H``, as read by :meth:`blocks`)."""
        return ChannelSet(
            name=self.name,
            h=torch.from_numpy(h),
            los=None if self.los is None else torch.from_numpy(self.los),
            positions=None if self.positions is None else torch.from_numpy(self.positions),
            meta=self.meta,
            split=None if self.split is None else torch.from_numpy(self.split),
        )

    def read_all(self) -> ChannelSet:
        """Every row of ``H`` in memory (the budget checked first), as a :class:`ChannelSet`."""
        self.check_memory(whole=True)
        h = np.empty(self.shape, dtype=self.dtype)
        for r0, block in self.blocks():
            h[r0 : r0 + block.shape[0]] = block
        return self.channel_set(h)

    def close(self) -> None:
        """Close the file."""
        for r in (self._raw, self._site):
            if r is not None:
                r.close()
        self._raw = self._site = None

    def __enter__(self) -> ChannelStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gain(block: np.ndarray) -> np.ndarray:
    """``‖h‖²`` per row, float64 ``[rows]`` (inf where it overflows, 0 where it underflows)."""
    with np.errstate(over="ignore", under="ignore"):
        return (block.real.astype(np.float64) ** 2 + block.imag.astype(np.float64) ** 2).sum(axis=1)


def _median_db(g: np.ndarray) -> float:
    """The lower median of ``10·log10 g`` (as ``torch.median`` and the site-median SNR convention)."""
    k = (g.size - 1) // 2
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(np.partition(g, k)[k]))


def open_channels(
    path: str | Path, name: str | None = None, options: ImportOptions | None = None
) -> ChannelStream:
    """Open any supported channel file for reading in blocks (:class:`ChannelStream`); everything that the
    header and metadata tell (format, dtype, shape, layout, declared sizes, links out of the file,
    ``los``/``positions``/``split``) is checked here, before any of ``H`` is read.

    ``options.max_memory`` is the memory budget (default: half the available memory).
    """
    path = Path(path)
    options = options or ImportOptions()
    budget = parse_memory(options.max_memory)
    try:
        fmt = detect_format(path)
        stream = ChannelStream(path, fmt, budget)
        try:
            if fmt == "mimofm-site":
                stream._open_site(name)
            else:
                stream._open_import(name, options)
        except BaseException:
            stream.close()
            raise
    except MimofmInputError:
        raise
    except Exception as e:
        raise _damaged(path, e) from None
    return stream


def _damaged(path: Path, e: Exception) -> MimofmInputError:
    # a damaged container (HDF5 B-tree, zip directory, .npy header, MATLAB header) fails deep inside its
    # library with whatever that library raises; to the user it is one clean error
    return file_error(path, f"is damaged or not a valid file of its format ({type(e).__name__}: {e})")


def load_channels(
    path: str | Path,
    name: str | None = None,
    *,
    var: str | None = None,
    subcarrier: str | int | None = None,
    layout: str | None = None,
    max_memory: str | int | None = None,
) -> ChannelSet:
    """Load any supported channel file (see the module docstring); validates dtype, shape, finiteness,
    non-zero users and gains. Returns ``h`` complex ``[num_positions, num_bs_ant]``.

    ``name`` overrides the site name (else the file's name, else the file stem). ``var``, ``subcarrier``
    and ``layout`` say how to read an imported array (:class:`~mimofm.channels.layouts.ImportOptions`; site
    files ignore them); ``max_memory`` is the memory budget (bytes, or a size such as ``"4G"``; default half
    the available memory). How the array was read is logged at INFO level (:func:`read_channels` returns it).
    """
    options = ImportOptions(var=var, subcarrier=subcarrier, layout=layout, max_memory=max_memory)
    return read_channels(path, name, options)[0]


def read_channels(
    path: str | Path, name: str | None = None, options: ImportOptions | None = None
) -> tuple[ChannelSet, ReadAs | None]:
    """:func:`load_channels` with its explanation: ``(channel_set, read_as)``, ``read_as`` None for a site
    file (already ``[num_positions, num_bs_ant]``; the options do not apply)."""
    path = Path(path)
    with open_channels(path, name, options) as stream:
        try:
            cs = stream.read_all()
        except MimofmInputError:
            raise
        except Exception as e:
            raise _damaged(path, e) from None
        read_as = stream.read_as
    if read_as is not None:
        log.info("%s: %s", path.name, read_as.line())
    return cs, read_as


def load_channel_files(
    paths: list[str | Path], options: ImportOptions | None = None
) -> list[tuple[ChannelSet, ReadAs | None]]:
    """:func:`read_channels` of every path; site names must be distinct (they key results)."""
    if not paths:
        raise MimofmInputError("give at least one `--data` file")
    out = [read_channels(p, None, options) for p in paths]
    names = [cs.name for cs, _ in out]
    if len(set(names)) != len(names):
        raise MimofmInputError(f"two `--data` files have the same site name: {names}")
    return out


def import_site(
    src: str | Path,
    out: str | Path,
    name: str | None = None,
    options: ImportOptions | None = None,
    *,
    prepare: Callable[[ChannelStream], tuple[dict, np.ndarray | None]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = True,
) -> ChannelStream:
    """Import any channel file as a site file ``out``, reading and writing ``H`` in blocks (bounded memory:
    the budget covers one block, ``‖h‖²`` per position and ``los``/``positions``/``split``), atomically.

    ``prepare(stream)`` is called once the file is open and checked, before any of ``H`` is read; it returns
    the site's ``meta`` and a ``split`` (or None to keep the file's). ``progress(rows_done, num_positions)``
    is called after each block. ``overwrite`` False refuses an existing ``out``, even one that appears
    while the import runs. Returns the (closed) stream: ``name``, ``shape``, ``read_as``, ...
    """
    src, out = Path(src), Path(out)
    with open_channels(src, name, options) as stream:
        meta, split = prepare(stream) if prepare is not None else (stream.meta, None)
        total = stream.shape[0]

        def rows():
            tick = (lambda done: progress(done, total)) if progress is not None else None
            for _, block in stream.blocks(tick):
                yield block

        try:
            write_site_blocks(
                out,
                stream.name,
                stream.shape,
                rows(),
                los=stream.los,
                positions=stream.positions,
                split=split if split is not None else stream.split,
                meta=meta,
                overwrite=overwrite,
            )
        except MimofmInputError:
            raise
        except Exception as e:
            raise _damaged(src, e) from None
    if stream.read_as is not None:
        log.info("%s: %s", src.name, stream.read_as.line())
    return stream


def save_channels_npz(path: str | Path, cs: ChannelSet) -> None:
    """Write a channel set atomically in the documented ``.npz`` form."""
    arrays = {"H": cs.h.numpy()}
    if cs.los is not None:
        arrays["los"] = cs.los.numpy().astype(bool)
    if cs.positions is not None:
        arrays["positions"] = cs.positions.numpy()
    if cs.split is not None:
        arrays["split"] = cs.split.numpy().astype(np.int8)
    arrays["meta_json"] = np.array(json.dumps({**cs.meta, "name": cs.name}, sort_keys=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def export_npz(cs: ChannelSet, path: str | Path) -> Path:
    """Write ``cs`` atomically as ``.npz`` (same as :func:`save_channels_npz`); returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise MimofmInputError(f"export file {str(path)!r} must end in .npz")
    save_channels_npz(path, cs)
    return path


def site_info(
    path: str | Path,
    options: ImportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Summary of any importable channel file (a site file or an import source), read in blocks (bounded
    memory, see :func:`open_channels`).

    Keys: ``file``, ``format``, ``name``, ``schema`` (None unless a site file), ``num_positions``,
    ``num_bs_ant``, ``los_ratio`` (None without ``los``), ``median_gain_db`` (median over positions of
    ``10·log10 ‖h‖²``; the lower median for an even count, as ``torch.median`` and the site-median SNR
    convention of :func:`mimofm.core.linkbudget.median_gain`), ``split_counts`` (None without ``split``),
    ``meta``, ``file_size_bytes``,
    ``checksum_sha256`` and ``checksum_ok`` (None unless a site file), ``created_utc``, ``read_as`` (how
    an imported array was read, :meth:`~mimofm.channels.layouts.ReadAs.line`; None for a site file).
    ``options``: how to read an imported array (:class:`~mimofm.channels.layouts.ImportOptions`).
    ``progress(rows_done, num_positions)`` is called after each block.
    A site file whose checksum does not match is reported with ``checksum_ok`` False, not raised.
    """
    path = Path(path)
    with open_channels(path, None, options) as stream:
        stream.verify_checksum = False
        total = stream.shape[0]
        tick = (lambda done: progress(done, total)) if progress is not None else None
        try:
            for _ in stream.blocks(tick):
                pass
        except MimofmInputError:
            raise
        except Exception as e:
            raise _damaged(path, e) from None
        header, read_as = stream.header, stream.read_as
    los, split = stream.los, stream.split
    return {
        "file": str(path),
        "format": stream.format,
        "name": stream.name,
        "schema": header["schema"],
        "num_positions": int(stream.shape[0]),
        "num_bs_ant": int(stream.shape[1]),
        "dtype": str(stream.dtype),
        "los_ratio": None if los is None else float(los.astype(np.float64).mean()),
        "median_gain_db": _median_db(stream.gains),
        "has_positions": stream.positions is not None,
        "split_counts": None
        if split is None
        else {n: int((split == i).sum()) for i, n in enumerate(SPLIT_NAMES)},
        "meta": stream.meta,
        "file_size_bytes": path.stat().st_size,
        "checksum_sha256": header["checksum_sha256"],
        "checksum_ok": header["checksum_ok"],
        "created_utc": header["created_utc"],
        "read_as": None if read_as is None else read_as.line(),
    }
