"""Bounded resources for channel files: the memory budget, plausibility of declared sizes, and HDF5 objects
that point outside their file.

Every reader checks a file's header or metadata (dtype, shape, declared and stored sizes) against these
rules *before* it reads any data (docs/data.md, "Hostile and huge files"):

* the memory budget (:func:`default_max_memory`: a fraction of the available RAM; ``--max-memory`` to change
  it, :func:`parse_memory`) bounds what a reader may hold at once;
* a compressed payload (a zip member, a filtered HDF5 dataset) may not declare more than
  :data:`MAX_INFLATE_RATIO` times its stored size: deflate/gzip cannot compress more than about 1032:1,
  so a larger ratio is a forged size or a bomb;
* an HDF5 chunk is decompressed whole: chunks larger than :data:`MAX_CHUNK_BYTES` are refused;
* HDF5 external links, virtual datasets and external-storage datasets read other files of the machine and
  are refused (:class:`ExternalDataError`): an imported file brings its own data.

The errors are :class:`~mimofm.core.validation.MimofmInputError` subclasses, one per rule, so a caller can
tell them apart; their messages name the file, the object and the fix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py

from mimofm.channels.formats import file_error
from mimofm.core.validation import MimofmInputError

__all__ = [
    "MAX_CHUNK_BYTES",
    "MAX_INFLATE_RATIO",
    "MEMORY_FRACTION",
    "ExternalDataError",
    "ImplausibleSizeError",
    "MemoryBudgetError",
    "available_memory",
    "check_budget",
    "check_hdf5_dataset",
    "check_ratio",
    "default_max_memory",
    "format_bytes",
    "hdf5_lookup",
    "parse_memory",
]

# deflate's limit is 1032:1 (RFC 1951: at most 258 bytes per 2-bit symbol); a little slack for headers
MAX_INFLATE_RATIO = 1100
# slack for tiny payloads, whose container overhead dominates their stored size
_RATIO_SLACK_BYTES = 64 * 1024
# an HDF5 chunk is read and decompressed whole, whatever slice of it is asked for
MAX_CHUNK_BYTES = 256 * 2**20
# the default memory budget: this share of the memory available when the reader starts
MEMORY_FRACTION = 0.5
_FALLBACK_AVAILABLE = 4 * 2**30


class MemoryBudgetError(MimofmInputError):
    """A file declares more data than the memory budget allows to hold at once."""


class ImplausibleSizeError(MimofmInputError):
    """A file's declared sizes contradict its stored sizes (a forged header, a truncated file or a bomb)."""


class ExternalDataError(MimofmInputError):
    """An HDF5 object reads data from outside its file (external link, virtual dataset, external storage)."""


def format_bytes(n: int | float) -> str:
    """``n`` bytes in binary units, e.g. ``9.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # unreachable


def available_memory() -> int:
    """The memory available to new allocations (``MemAvailable`` of ``/proc/meminfo``), in bytes."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return _FALLBACK_AVAILABLE


def default_max_memory() -> int:
    """The default memory budget: :data:`MEMORY_FRACTION` of :func:`available_memory`, in bytes."""
    return int(MEMORY_FRACTION * available_memory())


_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_memory(value: str | int | None) -> int:
    """``--max-memory``: bytes as an int, or a number with a binary unit (``512M``, ``2G``, ``1.5GiB``);
    None gives :func:`default_max_memory`."""
    if value is None:
        return default_max_memory()
    if isinstance(value, bool):
        raise MimofmInputError(f"`--max-memory` must be a size such as 512M or 4G, got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", str(value).lower())
        if m is None:
            raise MimofmInputError(f"`--max-memory` must be a size such as 512M, 4G or 1.5GiB, got {value!r}")
        n = int(float(m.group(1)) * _UNITS[m.group(2)])
    if n < 2**20:
        raise MimofmInputError(f"`--max-memory` must be at least 1M, got {value!r}")
    return n


def check_budget(path: Path, what: str, need: int, budget: int, hint: str = "") -> None:
    """Raise :class:`MemoryBudgetError` if ``need`` bytes (for ``what``) exceed ``budget``."""
    if need > budget:
        raise MemoryBudgetError(
            f"channel file {str(path)!r}: {what} needs {format_bytes(need)} in memory, more than the memory "
            f"budget of {format_bytes(budget)} (default: {MEMORY_FRACTION:.0%} of the available memory); "
            f"raise it with --max-memory{hint}"
        )


def check_ratio(path: Path, what: str, declared: int, stored: int) -> None:
    """Raise :class:`ImplausibleSizeError` if ``declared`` bytes cannot come out of ``stored`` compressed
    bytes (more than :data:`MAX_INFLATE_RATIO` : 1)."""
    if declared > MAX_INFLATE_RATIO * stored + _RATIO_SLACK_BYTES:
        raise ImplausibleSizeError(
            f"channel file {str(path)!r}: {what} declares {format_bytes(declared)} from "
            f"{format_bytes(stored)} stored, an implausible ratio of {declared / max(stored, 1):.0f}:1 "
            f"(deflate/gzip cannot exceed about 1032:1): a forged size, a truncated file or a "
            "decompression bomb; refused before reading"
        )


# ---------------------------------------------------------------------------------------------
# HDF5: objects that point outside the file


_MAX_SOFT_LINKS = 16


def hdf5_lookup(path: Path, f: h5py.File, key: str, _depth: int = 0):
    """The object at ``key`` in the open file ``f``, walked one link at a time so that nothing outside the
    file is ever opened; None if there is no such object.

    Raises :class:`ExternalDataError` for an external link on the way (or a user-defined link), and
    :class:`MimofmInputError` for soft links that loop.
    """
    if _depth > _MAX_SOFT_LINKS:
        raise file_error(path, f"`{key}`: more than {_MAX_SOFT_LINKS} nested soft links (a loop?)")
    obj = f
    parts = [p for p in key.split("/") if p]
    for i, part in enumerate(parts):
        if not isinstance(obj, h5py.Group):
            return None
        link = obj.get(part, getlink=True)
        if link is None:
            return None
        here = "/".join(parts[: i + 1])
        if isinstance(link, h5py.ExternalLink):
            raise ExternalDataError(
                f"channel file {str(path)!r}: `{here}` is an HDF5 external link to "
                f"{link.filename!r}:{link.path!r}; an imported file must hold its own data (copy the "
                "dataset into the file, e.g. with h5copy)"
            )
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else "/".join(parts[:i] + [link.path])
            obj = hdf5_lookup(path, f, target, _depth + 1)
            if obj is None:
                return None
        elif isinstance(link, h5py.HardLink):
            obj = obj[part]
        else:
            raise ExternalDataError(
                f"channel file {str(path)!r}: `{here}` is an HDF5 user-defined link; only hard and soft "
                "links inside the file are followed"
            )
    return obj


def check_hdf5_dataset(path: Path, key: str, ds: h5py.Dataset, declared: int | None = None) -> None:
    """Refuse a dataset that reads other files (virtual, external storage), whose chunks exceed
    :data:`MAX_CHUNK_BYTES`, or whose stored size cannot hold its declared size (:func:`check_ratio`).

    ``declared``: the bytes it declares (default: its shape times its item size).
    """
    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise ExternalDataError(
            f"channel file {str(path)!r}: `{key}` is an HDF5 virtual dataset (its data lives in other "
            "files); an imported file must hold its own data: write the dataset out in full"
        )
    if plist.get_external_count() > 0:
        name = plist.get_external(0)[0]
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        raise ExternalDataError(
            f"channel file {str(path)!r}: `{key}` stores its data outside the file (HDF5 external "
            f"storage {name!r}); an imported file must hold its own data: write the dataset out in full"
        )
    itemsize = ds.dtype.itemsize
    if declared is None:
        declared = itemsize
        for s in ds.shape or ():
            declared *= int(s)
    if ds.chunks is not None:
        chunk = itemsize
        for s in ds.chunks:
            chunk *= int(s)
        if chunk > MAX_CHUNK_BYTES:
            raise ImplausibleSizeError(
                f"channel file {str(path)!r}: `{key}` has HDF5 chunks of {list(ds.chunks)} "
                f"({format_bytes(chunk)}), each read and decompressed whole; at most "
                f"{format_bytes(MAX_CHUNK_BYTES)} per chunk is read: re-chunk it (h5repack -l CHUNK=...)"
            )
    if declared > _RATIO_SLACK_BYTES:
        stored = int(ds.id.get_storage_size())
        check_ratio(path, f"`{key}` {list(ds.shape)} {ds.dtype}", declared, stored)
