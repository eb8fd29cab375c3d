"""mimofm site files: one HDF5 file per site, versioned schema, SHA-256 checksum, resumable writing.

Schema version 1 (documented in docs/data.md):

* root attributes (all required, no others): ``mimofm_site_schema`` (int, 1), ``name`` (str),
  ``checksum_sha256`` (64 hex digits, see :func:`site_checksum`), ``meta_json`` (str, a JSON object:
  scene, BS pose, frequency, array, solver settings, versions, seed, generator command, ...),
  ``created_utc`` (str, ISO 8601).
* root datasets (no others, no groups): ``H`` complex64 ``[num_positions, num_bs_ant]`` (row n is
  the channel from the BS antennas to the UE at position n, ``y_n = H[n] @ x``, raw gains with path
  loss); optional ``los`` bool ``[num_positions]``; optional ``positions`` float64
  ``[num_positions, 3]`` (metres; 2-D positions are stored with z = 0); optional ``split`` int8
  ``[num_positions]`` (0 train, 1 val, 2 test).

Reading checks every rule above plus finiteness, non-zero rows and the checksum, and raises
:class:`~mimofm.core.validation.MimofmInputError` naming the file and the problem.

Resumable generation (:class:`PartialSite`): chunks of positions are appended to the work file
``<final>.partial.h5``; after each chunk the file is flushed, closed and fsync'ed, and the chunk
counter is committed last, so a generator killed between chunks resumes after the last complete one.
:meth:`PartialSite.finalize` writes the final file atomically (temp file + rename) and removes the
work file: nothing half-written ever exists under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import torch

from mimofm._io import atomic_path
from mimofm.channels.formats import check_h_array, detect_format
from mimofm.channels.limits import check_budget, check_hdf5_dataset, default_max_memory, hdf5_lookup
from mimofm.channels.types import ChannelSet
from mimofm.core.validation import MimofmInputError

__all__ = [
    "SCHEMA_VERSION",
    "PartialSite",
    "SiteHasher",
    "SiteReader",
    "canonical_json",
    "is_site_file",
    "partial_path",
    "read_site",
    "read_site_with_header",
    "site_checksum",
    "write_site",
    "write_site_blocks",
]

SCHEMA_VERSION = 1
DATASETS = ("H", "los", "positions", "split")  # the only datasets, in checksum order
ROOT_ATTRS = ("mimofm_site_schema", "name", "checksum_sha256", "meta_json", "created_utc")
DTYPES = {"H": np.dtype("<c8"), "los": np.dtype(bool), "positions": np.dtype("<f8"), "split": np.dtype("i1")}
PARTIAL_SCHEMA = 1
_PARTIAL_ATTRS = (
    "mimofm_partial_schema",
    "name",
    "num_bs_ant",
    "meta_json",
    "num_positions",
    "chunks_done",
    "created_utc",
)


def canonical_json(obj) -> str:
    """Canonical JSON: sorted keys, no whitespace, ASCII only, no NaN/Inf."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def site_checksum(name: str, arrays: dict[str, np.ndarray], meta: dict) -> str:
    """SHA-256 (hex) of a site's content.

    Fed, in order: the line ``mimofm-site-v1\\n``; for each present dataset of ``H, los, positions,
    split``: the line ``"<name> <dtype.str> <shape as JSON>\\n"`` (e.g. ``H <c8 [600,64]``) then the
    array's raw C-order little-endian bytes in its schema dtype; finally the canonical JSON of
    ``{"meta": meta, "name": name}``. ``created_utc`` is not covered (re-writing the same content gives
    the same checksum). :class:`SiteHasher` computes the same digest with ``H`` fed in blocks.
    """
    h = np.ascontiguousarray(arrays["H"], dtype=DTYPES["H"])
    hasher = SiteHasher(h.shape)
    hasher.update_h(h)
    return hasher.hexdigest(name, {k: v for k, v in arrays.items() if k != "H"}, meta)


class SiteHasher:
    """:func:`site_checksum` with ``H`` ``[num_positions, num_bs_ant]`` fed in row blocks, in order."""

    def __init__(self, h_shape: tuple[int, int]):
        self._d = hashlib.sha256(b"mimofm-site-v1\n")
        self._d.update(self._line("H", DTYPES["H"], h_shape))
        self._rows, self._total = 0, int(h_shape[0])

    @staticmethod
    def _line(key: str, dtype: np.dtype, shape) -> bytes:
        return f"{key} {dtype.str} {json.dumps([int(s) for s in shape], separators=(',', ':'))}\n".encode()

    def update_h(self, block: np.ndarray) -> None:
        """Feed the next rows of ``H`` (any complex dtype; hashed as complex64)."""
        block = np.ascontiguousarray(block, dtype=DTYPES["H"])
        self._rows += block.shape[0]
        # [rows, num_bs_ant] -> [bytes]: the block's little-endian bytes in C order
        self._d.update(block.reshape(-1).view(np.uint8))

    def hexdigest(self, name: str, aux: dict[str, np.ndarray], meta: dict) -> str:
        """The digest, after every row of ``H``, with the other datasets ``aux`` and ``meta``."""
        if self._rows != self._total:
            raise ValueError(f"hashed {self._rows} rows of H, the site has {self._total}")
        d = self._d.copy()
        for key in DATASETS[1:]:
            a = aux.get(key)
            if a is None:
                continue
            a = np.ascontiguousarray(a, dtype=DTYPES[key])
            d.update(self._line(key, a.dtype, a.shape))
            # [...] -> [bytes]: the array's little-endian bytes in C order
            d.update(a.reshape(-1).view(np.uint8))
        d.update(canonical_json({"meta": meta, "name": name}).encode())
        return d.hexdigest()


def partial_path(path: str | Path) -> Path:
    """The work file of a resumable generation: ``<final>.partial.h5`` beside ``<final>``."""
    path = Path(path)
    return path.with_name(path.name + ".partial.h5")


def _check_site_suffix(path: Path) -> None:
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise MimofmInputError(f"site file {str(path)!r} must end in .h5 or .hdf5")


def _site_bad(path: Path, msg: str) -> MimofmInputError:
    return MimofmInputError(f"site file {str(path)!r}: {msg}")


# ---------------------------------------------------------------------------------------------
# preparing arrays for writing


def _prepare(path: Path, h, los=None, positions=None, split=None, num_bs_ant: int | None = None) -> dict:
    """Turn tensors/arrays into the schema's numpy arrays and validate them (raises MimofmInputError)."""
    h = h.detach().cpu().numpy() if isinstance(h, torch.Tensor) else np.asarray(h)
    if not np.iscomplexobj(h):
        raise _site_bad(path, f"`H` must be complex, got dtype {h.dtype}")
    if h.ndim != 2:
        raise _site_bad(path, f"`H` must have shape [num_positions, num_bs_ant], got {list(h.shape)}")
    if num_bs_ant is not None and h.shape[1] != num_bs_ant:
        raise _site_bad(path, f"`H` chunk has {h.shape[1]} antennas, the site has {num_bs_ant}")
    with np.errstate(over="ignore"):
        h64 = np.ascontiguousarray(h, dtype=np.complex64)
    check_h_array(path, h64)  # also catches overflow to Inf / underflow to all-zero rows in complex64
    return {"H": h64, **_prepare_aux(path, h64.shape[0], los, positions, split)}


def _prepare_aux(path: Path, n: int, los=None, positions=None, split=None) -> dict:
    """Validate ``los``, ``positions``, ``split`` for ``n`` positions; the schema's numpy arrays."""
    out = {}
    for key, val in (("los", los), ("positions", positions), ("split", split)):
        if val is None:
            continue
        a = val.detach().cpu().numpy() if isinstance(val, torch.Tensor) else np.asarray(val)
        if key == "los":
            if (
                a.shape != (n,)
                or not (a.dtype == bool or np.issubdtype(a.dtype, np.integer))
                or not np.isin(a, (0, 1)).all()
            ):
                raise _site_bad(
                    path, f"`los` must be bool (or 0/1) of shape [{n}], got {a.dtype} {list(a.shape)}"
                )
            a = a.astype(bool)
        elif key == "positions":
            if a.ndim != 2 or a.shape[0] != n or a.shape[1] not in (2, 3) or a.dtype.kind not in "fiu":
                raise _site_bad(
                    path, f"`positions` must be real of shape [{n}, 2|3], got {a.dtype} {list(a.shape)}"
                )
            a = a.astype(np.float64)
            if a.shape[1] == 2:  # 2-D positions: z = 0
                a = np.concatenate([a, np.zeros((n, 1))], axis=1)
            if not np.isfinite(a).all():
                raise _site_bad(path, "`positions` has NaN/Inf entries")
        else:
            if a.shape != (n,) or a.dtype.kind not in "iu" or not np.isin(a, (0, 1, 2)).all():
                raise _site_bad(
                    path,
                    f"`split` must be int of shape [{n}] with values 0 (train), 1 (val), "
                    f"2 (test), got {a.dtype} {list(a.shape)}",
                )
            a = a.astype(np.int8)
        out[key] = np.ascontiguousarray(a, dtype=DTYPES[key])
    return out


def _meta_json(path: Path, meta) -> str:
    if not isinstance(meta, dict):
        raise _site_bad(path, f"`meta` must be a dict, got {type(meta).__name__}")
    try:
        return canonical_json(meta)
    except (TypeError, ValueError) as e:
        raise _site_bad(path, f"`meta` must be JSON-serializable without NaN/Inf ({e})") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_arrays(tmp: Path, name: str, arrays: dict, meta_json: str) -> str:
    meta = json.loads(meta_json)
    checksum = site_checksum(name, arrays, meta)
    with h5py.File(tmp, "w") as f:
        for key in DATASETS:
            if key in arrays:
                f.create_dataset(key, data=arrays[key], dtype=DTYPES[key])
        f.attrs["mimofm_site_schema"] = np.int64(SCHEMA_VERSION)
        f.attrs["name"] = name
        f.attrs["checksum_sha256"] = checksum
        f.attrs["meta_json"] = meta_json
        f.attrs["created_utc"] = _now()
    return checksum


def write_site(path: str | Path, channel_set: ChannelSet, split=None) -> Path:
    """Write ``channel_set`` as a site file, atomically (temp file + fsync + rename).

    ``channel_set.h`` complex ``[num_positions, num_bs_ant]`` is stored as complex64; ``split``
    ``[num_positions]`` (0 train, 1 val, 2 test) overrides ``channel_set.split``. Returns the path.
    """
    path = Path(path)
    _check_site_suffix(path)
    if not isinstance(channel_set.name, str) or not channel_set.name:
        raise _site_bad(path, f"the site name must be a non-empty string, got {channel_set.name!r}")
    arrays = _prepare(
        path,
        channel_set.h,
        channel_set.los,
        channel_set.positions,
        split if split is not None else channel_set.split,
    )
    meta_json = _meta_json(path, channel_set.meta)
    with atomic_path(path) as tmp:
        _write_arrays(tmp, channel_set.name, arrays, meta_json)
    return path


def write_site_blocks(
    path: str | Path,
    name: str,
    shape: tuple[int, int],
    blocks: Iterable[np.ndarray],
    *,
    los=None,
    positions=None,
    split=None,
    meta: dict | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a site file whose ``H`` ``[num_positions, num_bs_ant]`` (``shape``) arrives in row blocks, in
    order, from ``blocks`` (each complex ``[rows, num_bs_ant]``, validated as :func:`write_site` does);
    only one block is held at a time. Atomic: the file is written under a temporary name and renamed
    when complete, so an error or a kill (even during a block) leaves the old ``path`` or none, never a
    part of the new one. ``los``, ``positions``, ``split`` and ``meta`` as in :func:`write_site`. With
    ``overwrite`` False an existing ``path`` (even one created while this file was written) is refused.
    """
    path = Path(path)
    _check_site_suffix(path)
    if not isinstance(name, str) or not name:
        raise _site_bad(path, f"the site name must be a non-empty string, got {name!r}")
    n, num_bs_ant = int(shape[0]), int(shape[1])
    if n < 1 or num_bs_ant < 1:
        raise _site_bad(path, f"`H` must be non-empty, got shape {[n, num_bs_ant]}")
    aux = _prepare_aux(path, n, los, positions, split)
    meta_json = _meta_json(path, meta or {})
    hasher = SiteHasher((n, num_bs_ant))
    exists = _site_bad(
        path, "already exists (another process wrote it meanwhile?); pass --force to replace it"
    )
    if not overwrite and (path.exists() or path.is_symlink()):
        raise exists
    try:
        with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
            _write_blocks(path, f, hasher, n, num_bs_ant, blocks, aux, name, meta_json)
    except FileExistsError:
        raise exists from None
    return path


def _write_blocks(
    path: Path, f, hasher, n: int, num_bs_ant: int, blocks, aux: dict, name: str, meta_json: str
) -> None:
    """The body of :func:`write_site_blocks`, into the open temporary file ``f``."""
    ds = f.create_dataset("H", shape=(n, num_bs_ant), dtype=DTYPES["H"])
    row = 0
    for block in blocks:
        h64 = _prepare(path, block, num_bs_ant=num_bs_ant)["H"]
        if row + h64.shape[0] > n:
            raise _site_bad(path, f"more than the {n} rows of `H` were given")
        ds[row : row + h64.shape[0]] = h64
        hasher.update_h(h64)
        row += h64.shape[0]
    if row != n:
        raise _site_bad(path, f"`H` got {row} rows of the {n} declared")
    for key in DATASETS[1:]:
        if key in aux:
            f.create_dataset(key, data=aux[key], dtype=DTYPES[key])
    f.attrs["mimofm_site_schema"] = np.int64(SCHEMA_VERSION)
    f.attrs["name"] = name
    f.attrs["checksum_sha256"] = hasher.hexdigest(name, aux, json.loads(meta_json))
    f.attrs["meta_json"] = meta_json
    f.attrs["created_utc"] = _now()


# ---------------------------------------------------------------------------------------------
# reading


def is_site_file(path: str | Path) -> bool:
    """Whether ``path`` is a mimofm site file (an HDF5 file with the ``mimofm_site_schema`` attribute)."""
    try:
        return detect_format(path) == "mimofm-site"
    except MimofmInputError:
        return False


def _attr_str(path: Path, attrs, key: str) -> str:
    v = attrs[key]
    if isinstance(v, bytes):
        v = v.decode("utf-8", errors="replace")
    if not isinstance(v, str):
        raise _site_bad(path, f"root attribute `{key}` must be a string, got {type(v).__name__}")
    return v


class SiteReader:
    """An open site file, checked from its metadata before any data is read: root attributes, datasets
    (no links out of the file, schema dtypes and shapes), ``los``/``positions``/``split`` read and checked;
    ``H`` is then read in row blocks by :meth:`blocks`, which checks each block (finite, no all-zero row)
    and the checksum after the last one.

    Attributes: ``name``, ``meta``, ``header`` (``schema``, ``checksum_sha256``, ``created_utc``;
    ``checksum_ok`` once :meth:`blocks` has run to the end), ``shape`` (of ``H``), ``aux`` (the optional
    datasets). ``max_memory``: bytes the reader may hold (the optional datasets and one block; default
    :func:`~mimofm.channels.limits.default_max_memory`). Use it as a context manager.
    """

    def __init__(self, path: str | Path, max_memory: int | None = None):
        self.path = path = Path(path)
        if path.suffix.lower() not in (".h5", ".hdf5"):
            raise _site_bad(path, "site files end in .h5 or .hdf5")
        if not path.exists():
            raise MimofmInputError(f"site file {str(path)!r} does not exist")
        self.max_memory = default_max_memory() if max_memory is None else int(max_memory)
        try:
            self._f = h5py.File(path, "r")
        except OSError as e:
            raise _site_bad(path, f"is not a readable HDF5 file (truncated or corrupt?): {e}") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        path, f = self.path, self._f
        attrs = f.attrs
        missing = [k for k in ROOT_ATTRS if k not in attrs]
        if missing:
            raise _site_bad(path, f"missing root attribute(s) {', '.join(missing)}")
        extra = sorted(set(attrs.keys()) - set(ROOT_ATTRS))
        if extra:
            raise _site_bad(
                path,
                f"unexpected root attribute(s) {', '.join(extra)}; schema {SCHEMA_VERSION} "
                f"has only {', '.join(ROOT_ATTRS)}",
            )
        schema = attrs["mimofm_site_schema"]
        if not isinstance(schema, (int, np.integer)) or isinstance(schema, bool):
            raise _site_bad(path, f"`mimofm_site_schema` must be an integer, got {schema!r}")
        if int(schema) != SCHEMA_VERSION:
            newer = " (written by a newer mimofm: upgrade)" if int(schema) > SCHEMA_VERSION else ""
            raise _site_bad(
                path,
                f"schema version {int(schema)} is not supported; this mimofm reads "
                f"version {SCHEMA_VERSION}{newer}",
            )
        name = _attr_str(path, attrs, "name")
        if not name:
            raise _site_bad(path, "root attribute `name` is empty")
        checksum = _attr_str(path, attrs, "checksum_sha256")
        meta_json = _attr_str(path, attrs, "meta_json")
        created = _attr_str(path, attrs, "created_utc")
        try:
            meta = json.loads(meta_json)
        except json.JSONDecodeError as e:
            raise _site_bad(path, f"`meta_json` is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise _site_bad(path, f"`meta_json` must hold a JSON object, got {type(meta).__name__}")

        datasets = {}
        for key in f:
            if key not in DATASETS:
                raise _site_bad(
                    path,
                    f"unexpected member `{key}`; a site file holds only the datasets {', '.join(DATASETS)}",
                )
            obj = hdf5_lookup(path, f, key)  # refuses external links before anything is opened
            if not isinstance(obj, h5py.Dataset):
                raise _site_bad(path, f"`{key}` must be a dataset, not a group")
            if obj.dtype != DTYPES[key]:
                raise _site_bad(path, f"`{key}` must have dtype {DTYPES[key]}, got {obj.dtype}")
            check_hdf5_dataset(path, key, obj)
            datasets[key] = obj
        if "H" not in datasets:
            raise _site_bad(path, "has no `H` dataset")
        h = datasets["H"]
        if h.ndim != 2 or min(h.shape) == 0:
            raise _site_bad(
                path, f"`H` must have shape [num_positions, num_bs_ant] (non-empty), got {list(h.shape)}"
            )
        n = int(h.shape[0])
        want = {"los": (n,), "positions": (n, 3), "split": (n,)}
        for key, shape in want.items():
            if key in datasets and datasets[key].shape != shape:
                raise _site_bad(
                    path, f"`{key}` must have shape {list(shape)}, got {list(datasets[key].shape)}"
                )
        aux_bytes = sum(DTYPES[k].itemsize * int(np.prod(want[k])) for k in want if k in datasets)
        check_budget(path, "the site's los/positions/split", aux_bytes, self.max_memory)
        aux = {}
        for key in want:
            if key not in datasets:
                continue
            try:
                aux[key] = np.ascontiguousarray(datasets[key][()], dtype=DTYPES[key])
            except (OSError, ValueError, TypeError) as e:
                raise _site_bad(path, f"cannot read `{key}` (truncated or corrupt file?): {e}") from None
        if "positions" in aux and not np.isfinite(aux["positions"]).all():
            raise _site_bad(path, "`positions` has NaN/Inf entries")
        if "split" in aux and not np.isin(aux["split"], (0, 1, 2)).all():
            raise _site_bad(path, "`split` values must be 0 (train), 1 (val) or 2 (test)")
        self.name, self.meta, self.aux, self._h = name, meta, aux, h
        self.shape = (n, int(h.shape[1]))
        self.header = {
            "schema": int(schema),
            "checksum_sha256": checksum,
            "created_utc": created,
            "checksum_ok": None,
        }

    def block_rows(self, block_bytes: int = 32 * 2**20) -> int:
        """Rows per block of about ``block_bytes`` (at least one)."""
        return max(1, block_bytes // (self.shape[1] * DTYPES["H"].itemsize))

    def blocks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, block)`` for consecutive blocks of ``H`` (complex64 ``[rows, num_bs_ant]``), each
        checked (finite, no all-zero row); after the last one ``header["checksum_ok"]`` is set."""
        rows = rows or self.block_rows()
        n = self.shape[0]
        hasher = SiteHasher(self.shape)
        for r0 in range(0, n, rows):
            try:
                block = np.ascontiguousarray(self._h[r0 : r0 + rows], dtype=DTYPES["H"])
            except (OSError, ValueError, TypeError) as e:
                raise _site_bad(self.path, f"cannot read `H` (truncated or corrupt file?): {e}") from None
            check_h_array(self.path, block, row0=r0)
            hasher.update_h(block)
            yield r0, block
        self.header["checksum_ok"] = hasher.hexdigest(self.name, self.aux, self.meta) == (
            self.header["checksum_sha256"].lower()
        )

    def close(self) -> None:
        """Close the file."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> SiteReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_site_with_header(path: Path, max_memory: int | None = None) -> tuple[ChannelSet, dict]:
    """Read and validate everything but the checksum; returns the set and the file's header attributes
    (``checksum_ok`` tells whether the checksum matches). ``max_memory``: the memory budget in bytes
    (default: :func:`~mimofm.channels.limits.default_max_memory`)."""
    with SiteReader(path, max_memory) as r:
        n, num_bs_ant = r.shape
        need = n * num_bs_ant * DTYPES["H"].itemsize + sum(a.nbytes for a in r.aux.values())
        check_budget(
            r.path,
            f"`H` [{n}, {num_bs_ant}] complex64",
            need,
            r.max_memory,
            " (`mimofm data info` and `mimofm data import` read a site file in blocks)",
        )
        h = np.empty((n, num_bs_ant), dtype=DTYPES["H"])
        for r0, block in r.blocks():
            h[r0 : r0 + block.shape[0]] = block
        aux, header = r.aux, dict(r.header)
    cs = ChannelSet(
        name=r.name,
        h=torch.from_numpy(h),
        los=torch.from_numpy(aux["los"]) if "los" in aux else None,
        positions=torch.from_numpy(aux["positions"]) if "positions" in aux else None,
        meta=r.meta,
        split=torch.from_numpy(aux["split"]) if "split" in aux else None,
    )
    return cs, header


def read_site(path: str | Path) -> ChannelSet:
    """Read a site file, validating the schema and the checksum.

    Returns ``h`` complex64 ``[num_positions, num_bs_ant]``, ``los`` bool, ``positions`` float64
    ``[num_positions, 3]``, ``split`` int8 (each ``[num_positions]`` or None) and ``meta``.
    """
    path = Path(path)
    cs, header = read_site_with_header(path)
    if not header["checksum_ok"]:
        raise _site_bad(
            path,
            "checksum mismatch: the content differs from what was written "
            "(corrupted or edited); re-generate or re-import the site",
        )
    return cs


# ---------------------------------------------------------------------------------------------
# resumable generation


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


class PartialSite:
    """Append chunks of positions to ``<final>.partial.h5``; resume after a crash; finalize atomically.

    Usage::

        ps = PartialSite("sites/munich.h5", name="munich", num_bs_ant=64, meta={...})
        for i in range(ps.chunks_done, num_chunks):      # resumes after the last complete chunk
            h, los, pos = generate(chunk=i)               # h [c, 64] complex, los [c], pos [c, 3]
            ps.append(h, los=los, positions=pos)
        ps.finalize(split=split)                          # writes sites/munich.h5, removes the partial

    Opening an existing work file checks that ``name``, ``num_bs_ant`` and ``meta`` are the ones it was
    started with (else it raises: delete the work file to start over). Rows written after the last
    committed chunk (a crash during an append) are dropped on resume. The work file is closed between
    appends, so dropping the object (or killing the process between chunks) loses nothing.
    Every chunk must carry the same optional arrays (``los``/``positions``) as the first.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        num_bs_ant: int,
        meta: dict | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        _check_site_suffix(self.path)
        self.work_path = partial_path(self.path)
        if not isinstance(name, str) or not name:
            raise _site_bad(self.path, f"the site name must be a non-empty string, got {name!r}")
        if int(num_bs_ant) < 1:
            raise _site_bad(self.path, f"`num_bs_ant` must be >= 1, got {num_bs_ant}")
        if self.path.exists() and not overwrite:
            raise _site_bad(self.path, "already exists; pass overwrite=True to generate it again")
        self.name, self.num_bs_ant = name, int(num_bs_ant)
        self.meta = dict(meta or {})
        self._meta_json = _meta_json(self.path, self.meta)
        self._finalized = False
        if self.work_path.exists():
            self._resume()
        else:
            self._create()

    # -- work file ---------------------------------------------------------------------------

    def _work_bad(self, msg: str) -> MimofmInputError:
        return MimofmInputError(f"partial site file {str(self.work_path)!r}: {msg}")

    def _create(self) -> None:
        with atomic_path(self.work_path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["mimofm_partial_schema"] = np.int64(PARTIAL_SCHEMA)
            f.attrs["name"] = self.name
            f.attrs["num_bs_ant"] = np.int64(self.num_bs_ant)
            f.attrs["meta_json"] = self._meta_json
            f.attrs["num_positions"] = np.int64(0)
            f.attrs["chunks_done"] = np.int64(0)
            f.attrs["created_utc"] = _now()
        self.num_positions, self.chunks_done = 0, 0

    def _open(self, mode: str):
        try:
            return h5py.File(self.work_path, mode)
        except OSError as e:
            raise self._work_bad(
                f"cannot be opened ({e}); it was probably damaged by a crash during an "
                "append: delete it to start the generation over"
            ) from None

    def _resume(self) -> None:
        with self._open("r+") as f:
            a = f.attrs
            missing = [k for k in _PARTIAL_ATTRS if k not in a]
            if missing:
                raise self._work_bad(f"missing attribute(s) {', '.join(missing)}; delete it to start over")
            if int(a["mimofm_partial_schema"]) != PARTIAL_SCHEMA:
                raise self._work_bad(f"partial schema {int(a['mimofm_partial_schema'])} is not supported")
            started = {
                "name": str(a["name"]),
                "num_bs_ant": int(a["num_bs_ant"]),
                "meta": json.loads(str(a["meta_json"])),
            }
            now = {"name": self.name, "num_bs_ant": self.num_bs_ant, "meta": json.loads(self._meta_json)}
            diff = [k for k in started if canonical_json(started[k]) != canonical_json(now[k])]
            if diff:
                raise self._work_bad(
                    f"was started with a different {', '.join(diff)} "
                    f"({canonical_json({k: started[k] for k in diff})[:300]}); "
                    "delete it to start over with the new settings"
                )
            n = int(a["num_positions"])
            for key in f:  # drop rows of an append that never committed
                if f[key].shape[0] != n:
                    f[key].resize(n, axis=0)
            self.num_positions, self.chunks_done = n, int(a["chunks_done"])
        _fsync(self.work_path)

    # -- public --------------------------------------------------------------------------------

    def append(self, h, los=None, positions=None) -> int:
        """Append one chunk: ``h`` complex ``[c, num_bs_ant]``, ``los`` ``[c]``, ``positions`` ``[c, 2|3]``.

        The chunk is written, flushed and fsync'ed, then the chunk counter is committed. Returns the
        number of complete chunks.
        """
        if self._finalized:
            raise self._work_bad("is already finalized")
        arrays = _prepare(self.work_path, h, los, positions, None, num_bs_ant=self.num_bs_ant)
        c = arrays["H"].shape[0]
        with self._open("r+") as f:
            present = set(f.keys())
            if present and present != set(arrays):
                raise self._work_bad(
                    f"every chunk must carry the same arrays: the first had "
                    f"{sorted(present)}, this one has {sorted(arrays)}"
                )
            n = int(f.attrs["num_positions"])
            for key, a in arrays.items():
                if key not in f:
                    f.create_dataset(
                        key,
                        shape=(0,) + a.shape[1:],
                        maxshape=(None,) + a.shape[1:],
                        dtype=DTYPES[key],
                        chunks=(max(1, min(c, 4096)),) + a.shape[1:],
                    )
                ds = f[key]
                ds.resize(n + c, axis=0)
                ds[n:] = a
            f.flush()
            f.attrs["num_positions"] = np.int64(n + c)  # commit: counters last
            f.attrs["chunks_done"] = np.int64(self.chunks_done + 1)
            f.flush()
        _fsync(self.work_path)
        self.num_positions, self.chunks_done = n + c, self.chunks_done + 1
        return self.chunks_done

    def finalize(self, split=None) -> Path:
        """Write the final site file atomically from the work file, then remove the work file.

        ``split`` int ``[num_positions]`` (0 train, 1 val, 2 test) is optional. Returns the final path.
        """
        if self._finalized:
            return self.path
        if self.num_positions == 0:
            raise self._work_bad("has no positions yet; append at least one chunk before finalizing")
        with self._open("r") as f:
            n = int(f.attrs["num_positions"])
            data = {k: f[k][:n] for k in f}
        cs = ChannelSet(
            name=self.name,
            h=torch.from_numpy(data["H"]),
            los=torch.from_numpy(data["los"]) if "los" in data else None,
            positions=torch.from_numpy(data["positions"]) if "positions" in data else None,
            meta=self.meta,
        )
        write_site(self.path, cs, split=split)
        self.work_path.unlink()
        self._finalized = True
        return self.path

    def discard(self) -> None:
        """Delete the work file (start over next time)."""
        if self.work_path.exists():
            self.work_path.unlink()
        self._finalized = True
