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
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

from mimofm._io import atomic_path
from mimofm.channels.formats import GAIN_FLOOR_DB, check_h_array, detect_format, file_error
from mimofm.channels.layouts import (
    CHANNEL_NAMES,
    ImportOptions,
    ReadAs,
    apply_layout,
    detect_layout,
    parse_layout,
)
from mimofm.channels.store import read_site, read_site_with_header
from mimofm.channels.types import SPLIT_NAMES, ChannelSet
from mimofm.core.validation import MimofmInputError

__all__ = [
    "ImportOptions",
    "export_npz",
    "load_channel_files",
    "load_channels",
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


class _Raw:
    """What a reader found: ``arrays`` (name -> raw numpy array), ``listing`` (every variable of the file:
    name, shape, type, for messages) and ``rejected`` (name -> the error reading it would raise; raised
    only if that variable is needed)."""

    def __init__(self, arrays: dict, listing: list | None = None, rejected: dict | None = None) -> None:
        self.arrays = arrays
        self.listing = (
            listing if listing is not None else [(k, list(v.shape), str(v.dtype)) for k, v in arrays.items()]
        )
        self.rejected = rejected or {}

    def has(self, key: str) -> bool:
        """Whether ``key`` is in the file (read or rejected)."""
        return key in self.arrays or key in self.rejected

    def get(self, key: str) -> np.ndarray:
        """The array ``key``; raises the stored error if it could not be read."""
        if key in self.rejected:
            raise self.rejected[key]
        return self.arrays[key]


# ---------------------------------------------------------------------------------------------
# readers: each returns a dict of raw numpy arrays (the names in _IMPORT_NAMES), not yet validated


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):  # object arrays need pickle
            raise file_error(
                path, f"cannot be read without pickle ({e}); store plain numeric arrays"
            ) from None
        raise file_error(path, f"is not a readable .npz archive ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise file_error(path, f"is not a readable .npz archive ({e})") from None


def _read_npy(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )(f)
        if header[2].hasobject:
            raise file_error(
                path,
                f"holds an object array (dtype {header[2]}) that cannot be read without pickle; "
                "store a plain complex array",
            )
        h = np.load(path, allow_pickle=False)
    except MimofmInputError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise file_error(path, f"is not a readable .npy file ({e})") from None
    return {"H": h}


def _read_mat5(path: Path, names: tuple[str, ...]) -> _Raw:
    """Parse a MATLAB v5 file in a child process (scipy's reader can crash on malformed files)."""
    _REJECT = {
        "sparse": "a MATLAB sparse matrix; save it full",
        "struct": "a MATLAB struct; store a numeric matrix",
        "object": "a MATLAB cell array or object (object dtype); store a numeric matrix",
    }
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
                ],
                capture_output=True,
                text=True,
                timeout=120,
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
                path, f"is not a readable MATLAB v5 .mat file (reader exit {proc.returncode})"
            ) from None
        if "error" in report:
            raise file_error(path, f"is not a readable MATLAB v5 .mat file ({report['error']})")
        rejected = {}
        for key, kind in report.get("rejected", {}).items():
            err = file_error(path, f"`{key}` is {_REJECT.get(kind, f'a MATLAB {kind}, not a numeric array')}")
            if key in _IMPORT_NAMES:
                raise err
            rejected[key] = err
        with np.load(out, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    arrays = {}
    for key in names:
        if key not in raw:
            continue
        v = raw[key]
        if key == "meta_json":
            if v.dtype.kind != "U":
                raise file_error(path, f"`meta_json` must be a char array holding JSON, got dtype {v.dtype}")
            v = np.array("".join(v.ravel().tolist()))
        arrays[key] = v
    listing = [(n, shape, cls) for n, shape, cls in report.get("variables", [])]
    return _Raw(arrays, listing, rejected)


def _hdf5_dataset(path: Path, f, key: str, matlab: bool) -> np.ndarray:
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        raise file_error(
            path,
            f"`{key}` is an HDF5 group, not a dataset (a MATLAB struct or sparse matrix?); "
            "store a full numeric matrix",
        )
    cls = obj.attrs.get("MATLAB_class")
    cls = cls.decode() if isinstance(cls, bytes) else cls
    if cls in ("cell", "struct") or h5py.check_dtype(ref=obj.dtype) is not None:
        raise file_error(
            path, f"`{key}` is a MATLAB cell array or holds HDF5 object references; store a numeric matrix"
        )
    if obj.attrs.get("MATLAB_empty", 0):
        raise file_error(path, f"`{key}` is an empty MATLAB array")
    if h5py.check_dtype(vlen=obj.dtype) is not None or obj.dtype.hasobject:
        raise file_error(
            path, f"`{key}` has a variable-length/object dtype ({obj.dtype}); store a numeric array"
        )
    try:
        a = obj[()]
    except (OSError, ValueError, TypeError) as e:
        raise file_error(path, f"cannot read `{key}` (truncated or corrupt file?): {e}") from None
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    names = a.dtype.names
    if names is not None:
        pair = next((p for p in (("real", "imag"), ("r", "i")) if set(names) == set(p)), None)
        if pair is None:
            raise file_error(
                path,
                f"`{key}` has a compound dtype with fields {list(names)}; only complex "
                "compounds (fields real/imag or r/i) are read",
            )
        re, im = a[pair[0]], a[pair[1]]
        if re.dtype.kind not in "fiu" or im.dtype.kind not in "fiu":
            raise file_error(path, f"`{key}` compound fields must be numeric, got {re.dtype}/{im.dtype}")
        ctype = np.complex64 if (re.dtype.itemsize <= 4 and im.dtype.itemsize <= 4) else np.complex128
        a = re.astype(ctype) + 1j * im.astype(ctype)
        a = a.astype(ctype)
    if matlab:
        if cls == "char" and key == "meta_json":
            return np.array("".join(chr(c) for c in a.ravel(order="F").tolist()))
        a = np.transpose(a)  # MATLAB is column-major: reverse the axes back
    return a


def _hdf5_listing(f) -> list:
    """Every dataset of an HDF5 file (name, shape, dtype), groups walked, at most 50."""
    found: list = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and len(found) < 50 and not name.startswith("#refs#"):
            found.append((name, list(obj.shape), str(obj.dtype)))

    f.visititems(visit)
    return found


def _read_hdf5(path: Path, matlab: bool, names: tuple[str, ...]) -> _Raw:
    arrays: dict[str, np.ndarray] = {}
    rejected: dict[str, MimofmInputError] = {}
    try:
        with h5py.File(path, "r") as f:
            for k in names:
                if k == "meta_json" or k not in f:
                    continue
                try:
                    arrays[k] = _hdf5_dataset(path, f, k, matlab)
                except MimofmInputError as e:
                    if k in _IMPORT_NAMES:
                        raise
                    rejected[k] = e  # raised only if this variable is the channel asked for
            if "meta_json" in f:
                obj = f["meta_json"]
                if matlab:
                    arrays["meta_json"] = _hdf5_dataset(path, f, "meta_json", matlab)
                elif (
                    isinstance(obj, h5py.Dataset)
                    and h5py.check_string_dtype(obj.dtype) is not None
                    and obj.shape == ()
                ):
                    m = obj[()]
                    arrays["meta_json"] = np.array(m.decode() if isinstance(m, bytes) else str(m))
                else:
                    raise file_error(
                        path, "`meta_json` must be a scalar string (root attribute or dataset) holding JSON"
                    )
            if "meta_json" in f.attrs:
                m = f.attrs["meta_json"]
                arrays["meta_json"] = np.array(m.decode() if isinstance(m, bytes) else str(m))
            listing = _hdf5_listing(f)
            if matlab:  # shapes as MATLAB shows them (column-major: stored reversed)
                listing = [(n, shape[::-1], dt) for n, shape, dt in listing]
    except MimofmInputError:
        raise
    except OSError as e:
        raise file_error(path, f"is not a readable HDF5 file (truncated or corrupt?): {e}") from None
    return _Raw(arrays, listing, rejected)


# ---------------------------------------------------------------------------------------------
# the channel array: which variable, which layout (mimofm.channels.layouts)


def _describe_listing(raw: _Raw) -> str:
    items = [f"{n} {list(shape)} {kind}" for n, shape, kind in raw.listing[:12]]
    more = f", ... ({len(raw.listing) - 12} more)" if len(raw.listing) > 12 else ""
    return ", ".join(items) + more if items else "nothing"


def _pick_var(path: Path, raw: _Raw, var: str | None) -> str:
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


def _interpret(path: Path, fmt: str, raw: _Raw, options: ImportOptions) -> tuple[dict, ReadAs, tuple, int]:
    """The file's arrays with ``H`` reduced to ``[num_positions, num_bs_ant]``, how it was read, the shape
    of its position axes and the subcarrier repeat."""
    var = "H" if fmt == "npy" else _pick_var(path, raw, options.var)
    arrays = {k: v for k, v in raw.arrays.items() if k in ("los", "positions", "split", "meta_json")}
    if var == "H":
        h = _combine_real_imag(path, {k: raw.get(k) for k in ("H", "H_real", "H_imag") if raw.has(k)})
    else:
        h = raw.get(var)
    if h.dtype.hasobject:
        raise file_error(path, f"`{var}` has an object dtype; store a plain complex array")
    if not np.iscomplexobj(h):
        hint = (
            " (for real and imaginary parts stored apart, name them `H_real` and `H_imag`)"
            if var == "H"
            else ""
        )
        if h.ndim >= 1 and h.shape[-1] == 2:
            hint += "; a last axis of 2 holding real/imag parts: save `x[..., 0] + 1j * x[..., 1]`"
        raise file_error(path, f"`{var}` must be complex, got dtype {h.dtype}{hint}")
    if h.ndim < 2:
        raise file_error(path, f"`{var}` must have shape [num_positions, num_bs_ant], got {list(h.shape)}")
    if min(h.shape) == 0:
        raise file_error(path, f"`{var}` is empty: shape {list(h.shape)}")
    shape = tuple(int(x) for x in h.shape)
    if options.layout is not None:
        layout = parse_layout(path, options.layout, var, shape)
    else:
        layout = detect_layout(
            path,
            var,
            shape,
            matlab=fmt in ("mat-v5", "mat-v7.3"),
            has_tau=raw.has("tau"),
            subcarrier_given=options.subcarrier is not None,
            aux_lengths=_aux_lengths(arrays),
        )
    h2, read_as, position_shape, repeat = apply_layout(path, var, h, layout, options.subcarrier)
    rx_pos = raw.arrays.get("rx_pos")  # DeepMIMO's receiver positions, used when they fit
    if (
        "positions" not in arrays
        and rx_pos is not None
        and rx_pos.ndim == 2
        and rx_pos.shape[1] in (2, 3)
        and rx_pos.shape[0] == math.prod(position_shape)
    ):
        arrays["positions"] = rx_pos
    if layout.labels != ("n", "ntx") or repeat > 1:
        _reshape_aux(arrays, position_shape, repeat)
    arrays["H"] = h2
    return arrays, read_as, position_shape, repeat


# ---------------------------------------------------------------------------------------------
# validation shared by every format


def _where(row: int, position_shape: tuple, repeat: int) -> str:
    """Row ``row`` of ``H``, with its index in the source's position axes when they were flattened."""
    text = f"{row}"
    if len(position_shape) > 1 or repeat > 1:
        idx = [int(i) for i in np.unravel_index(row // repeat, position_shape)]
        text += f" = source position {idx}" + (f", subcarrier {row % repeat}" if repeat > 1 else "")
    return text


def _check_h(path: Path, h: np.ndarray, read_as: ReadAs, position_shape: tuple, repeat: int) -> None:
    """Finite entries, no all-zero position, gains large enough for an SNR to mean something."""
    var = read_as.var
    finite = np.isfinite(h)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise file_error(
            path,
            f"`{var}` has {int((~finite).sum())} NaN/Inf entries in {rows.size} positions (first: "
            f"{_where(int(rows[0]), position_shape, repeat)}); every entry must be finite: fix or drop "
            "those positions",
        )
    zero = ~np.abs(h).any(axis=1)
    if zero.any():
        hint = (
            " (DeepMIMO gives users without paths an all-zero channel: keep the users with num_paths > 0)"
            if "DeepMIMO" in read_as.what
            else ""
        )
        first = _where(int(np.argmax(zero)), position_shape, repeat)
        raise file_error(
            path,
            f"`{var}` has {int(zero.sum())} all-zero rows (first: {first}){hint}; "
            "no precoder can serve a position without a channel: remove them",
        )
    g = (h.real.astype(np.float64) ** 2 + h.imag.astype(np.float64) ** 2).sum(axis=1)  # [positions] ‖h‖²
    g_db = 10.0 * np.log10(g)
    how = (
        "mimofm sets the SNR with --snr-db (the noise power is chosen so that the site-median gain "
        "‖h‖² reaches that SNR) or with --noise-dbm (the raw gains with --tx-power-dbm and --system-loss-db)"
    )
    median_db = float(np.sort(g_db)[(g_db.size - 1) // 2])  # the lower median, as median_gain
    if median_db < GAIN_FLOOR_DB:
        raise file_error(
            path,
            f"`{var}` has a median gain of {median_db:.1f} dB (‖h‖² over positions), below "
            f"{GAIN_FLOOR_DB:g} dB: too small for an SNR to mean anything. {how}; no radio link loses "
            f"{-median_db:.0f} dB (free space at 100 GHz over 100 km: 172 dB). Check that H holds linear "
            "complex amplitudes (not dB or powers), or rescale it: with --snr-db a constant scale does not "
            f"change the results, e.g. multiply H by {10 ** (-median_db / 20):.0e} for a median gain of 0 dB",
        )
    low = g_db < GAIN_FLOOR_DB
    if low.any():
        first = int(np.argmax(low))
        raise file_error(
            path,
            f"`{var}` has {int(low.sum())} positions with a gain below {GAIN_FLOOR_DB:g} dB (first: "
            f"{_where(first, position_shape, repeat)}, {g_db[first]:.1f} dB; median {median_db:.1f} dB): no "
            f"SNR serves them ({how}); remove those positions",
        )
    check_h_array(path, h)


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


def _combine_real_imag(path: Path, arrays: dict) -> np.ndarray:
    if "H" in arrays:
        if "H_real" in arrays or "H_imag" in arrays:
            raise file_error(path, "has both `H` and `H_real`/`H_imag`; keep one form")
        return arrays["H"]
    if "H_real" not in arrays or "H_imag" not in arrays:
        raise file_error(path, "has only one of `H_real`/`H_imag`; both are needed")
    re, im = arrays["H_real"], arrays["H_imag"]
    for k, a in (("H_real", re), ("H_imag", im)):
        if a.dtype.kind not in "fiu":
            raise file_error(path, f"`{k}` must be real numeric, got dtype {a.dtype}")
    if re.shape != im.shape:
        raise file_error(path, f"`H_real` {list(re.shape)} and `H_imag` {list(im.shape)} differ in shape")
    ctype = np.complex64 if (re.dtype == np.float32 and im.dtype == np.float32) else np.complex128
    return (re.astype(ctype) + 1j * im.astype(ctype)).astype(ctype)


def _channel_set(
    path: Path,
    arrays: dict[str, np.ndarray],
    name: str | None,
    read_as: ReadAs,
    position_shape: tuple = (),
    repeat: int = 1,
) -> ChannelSet:
    h = arrays["H"]  # [num_positions, num_bs_ant], complex (see _interpret)
    _check_h(path, h, read_as, position_shape or (h.shape[0],), repeat)
    n = h.shape[0]

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
                + _hint(h.shape, los.size),
            )
        if v.dtype != bool and not np.isin(v, (0, 1)).all():
            raise file_error(path, "`los` values must be 0/1 (or bool)")
        los = torch.from_numpy(v.astype(bool))

    pos = arrays.get("positions")
    if pos is not None:
        if (
            pos.ndim != 2
            or pos.shape[0] != n
            or pos.shape[1] not in (2, 3)
            or not (np.issubdtype(pos.dtype, np.floating) or np.issubdtype(pos.dtype, np.integer))
        ):
            hint = _hint(h.shape, pos.shape[0]) if pos.ndim == 2 else ""
            raise file_error(
                path,
                f"`positions` must be float of shape [{n}, 2|3], got {pos.dtype} {list(pos.shape)}{hint}",
            )
        if not np.isfinite(pos).all():
            raise file_error(path, "`positions` has NaN/Inf entries")
        pos = torch.from_numpy(np.ascontiguousarray(pos, dtype=np.float64))

    split = arrays.get("split")
    if split is not None:
        v = _vector(split, n)
        if v is None or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
            raise file_error(
                path, f"`split` must be int of shape [{n}], got {split.dtype} {list(split.shape)}"
            )
        if not np.isin(v, (0, 1, 2)).all():
            raise file_error(path, "`split` values must be 0 (train), 1 (val) or 2 (test)")
        split = torch.from_numpy(v.astype(np.int8))

    meta = {}
    if "meta_json" in arrays:
        try:
            meta = json.loads(str(arrays["meta_json"]))
        except json.JSONDecodeError as e:
            raise file_error(path, f"`meta_json` is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise file_error(path, f"`meta_json` must hold a JSON object, got {type(meta).__name__}")
    h = np.ascontiguousarray(h, dtype=np.complex64 if h.dtype == np.complex64 else np.complex128)
    return ChannelSet(
        name=name or meta.get("name") or path.stem,
        h=torch.from_numpy(h),
        los=los,
        positions=pos,
        meta=meta,
        split=split,
    )


def load_channels(
    path: str | Path,
    name: str | None = None,
    *,
    var: str | None = None,
    subcarrier: str | int | None = None,
    layout: str | None = None,
) -> ChannelSet:
    """Load any supported channel file (see the module docstring); validates dtype, shape, finiteness,
    non-zero users and gains. Returns ``h`` complex ``[num_positions, num_bs_ant]``.

    ``name`` overrides the site name (else the file's name, else the file stem). ``var``, ``subcarrier``
    and ``layout`` say how to read an imported array (:class:`~mimofm.channels.layouts.ImportOptions`; site
    files ignore them). How the array was read is logged at INFO level (:func:`read_channels` returns it).
    """
    return read_channels(path, name, ImportOptions(var=var, subcarrier=subcarrier, layout=layout))[0]


def read_channels(
    path: str | Path, name: str | None = None, options: ImportOptions | None = None
) -> tuple[ChannelSet, ReadAs | None]:
    """:func:`load_channels` with its explanation: ``(channel_set, read_as)``, ``read_as`` None for a site
    file (already ``[num_positions, num_bs_ant]``; the options do not apply)."""
    path = Path(path)
    options = options or ImportOptions()
    try:
        cs, read_as = _load(path, name, options)
    except MimofmInputError:
        raise
    except Exception as e:
        # a damaged container (HDF5 B-tree, zip directory, .npy header parsed by ast, MATLAB header) fails
        # deep inside its library with whatever that library raises; to the user it is one clean error
        raise file_error(
            path, f"is damaged or not a valid file of its format ({type(e).__name__}: {e})"
        ) from None
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


def _load(path: Path, name: str | None, options: ImportOptions) -> tuple[ChannelSet, ReadAs | None]:
    fmt = detect_format(path)
    if fmt == "mimofm-site":
        cs = read_site(path)
        if name:
            cs.name = name
        return cs, None
    names = _wanted(options.var)
    if fmt == "npz":
        raw = _Raw(_read_npz(path))
    elif fmt == "npy":
        raw = _Raw(_read_npy(path))
    elif fmt == "mat-v5":
        raw = _read_mat5(path, names)
    else:  # hdf5 or mat-v7.3
        raw = _read_hdf5(path, fmt == "mat-v7.3", names)
    arrays, read_as, position_shape, repeat = _interpret(path, fmt, raw, options)
    return _channel_set(path, arrays, name, read_as, position_shape, repeat), read_as


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


def site_info(path: str | Path, options: ImportOptions | None = None) -> dict:
    """Summary of any importable channel file (a site file or an import source).

    Keys: ``file``, ``format``, ``name``, ``schema`` (None unless a site file), ``num_positions``,
    ``num_bs_ant``, ``los_ratio`` (None without ``los``), ``median_gain_db`` (median over positions of
    ``10·log10 ‖h‖²``; the lower median for an even count, as ``torch.median`` and the site-median SNR
    convention of :func:`mimofm.core.linkbudget.median_gain`), ``split_counts`` (None without ``split``),
    ``meta``, ``file_size_bytes``,
    ``checksum_sha256`` and ``checksum_ok`` (None unless a site file), ``created_utc``, ``read_as`` (how
    an imported array was read, :meth:`~mimofm.channels.layouts.ReadAs.line`; None for a site file).
    ``options``: how to read an imported array (:class:`~mimofm.channels.layouts.ImportOptions`).
    A site file whose checksum does not match is reported with ``checksum_ok`` False, not raised.
    """
    path = Path(path)
    fmt = detect_format(path)
    header = {"schema": None, "checksum_sha256": None, "checksum_ok": None, "created_utc": None}
    read_as = None
    if fmt == "mimofm-site":
        cs, header = read_site_with_header(path)
    else:
        cs, read_as = read_channels(path, None, options)
    g = (cs.h.real.double().square() + cs.h.imag.double().square()).sum(-1)  # [num_positions] ‖h‖²
    return {
        "file": str(path),
        "format": fmt,
        "name": cs.name,
        "schema": header["schema"],
        "num_positions": cs.num_positions,
        "num_bs_ant": cs.num_bs_ant,
        "dtype": str(cs.h.dtype).replace("torch.", ""),
        "los_ratio": None if cs.los is None else float(cs.los.float().mean()),
        "median_gain_db": float(10.0 * np.log10(float(g.median()))),
        "has_positions": cs.positions is not None,
        "split_counts": None
        if cs.split is None
        else {n: int((cs.split == i).sum()) for i, n in enumerate(SPLIT_NAMES)},
        "meta": cs.meta,
        "file_size_bytes": path.stat().st_size,
        "checksum_sha256": header["checksum_sha256"],
        "checksum_ok": header["checksum_ok"],
        "created_utc": header["created_utc"],
        "read_as": None if read_as is None else read_as.line(),
    }
