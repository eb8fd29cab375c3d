"""The arrays of an imported channel file, known by their headers and read whole or in blocks (internal).

:func:`open_container` opens a ``.npz``, ``.npy`` or HDF5 (and MATLAB v7.3) file and returns an
:class:`ArraySource` per variable: its shape and dtype come from the header or the HDF5 metadata, and every
header-level rule of :mod:`mimofm.channels.limits` (declared size against stored size, compression ratio,
HDF5 chunk size, links out of the file) is checked before any data is read. The data is then read by
:meth:`ArraySource.read` in blocks along one axis (``.npy`` and ``.npz`` members: axis 0 of a C-order array,
read sequentially; HDF5: any axis, by hyperslab) or whole by :meth:`ArraySource.read_all` (small arrays,
or when the caller's memory budget allows it).
"""

from __future__ import annotations

import ast
import math
import zipfile
from pathlib import Path

import h5py
import numpy as np

from mimofm.channels.formats import file_error
from mimofm.channels.limits import (
    ImplausibleSizeError,
    check_hdf5_dataset,
    check_ratio,
    format_bytes,
    hdf5_lookup,
)
from mimofm.core.validation import MimofmInputError

__all__ = ["ArraySource", "Container", "MemorySource", "open_container"]

_NPY_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 64 * 1024  # a .npy header is a short dict literal; np.load's own limit is 10 000 bytes
_MAX_LISTED = 50


class ArraySource:
    """One array of a file: ``name``, ``shape``, ``dtype`` (of what reading returns) and the axes along which
    :meth:`read` reads blocks (``stream_axes``)."""

    def __init__(self, name: str, shape: tuple[int, ...], dtype: np.dtype, stream_axes: tuple[int, ...]):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.stream_axes = stream_axes

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements (a Python int: no overflow for forged shapes)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the whole array takes in memory once read."""
        return self.size * self.dtype.itemsize

    def read_all(self) -> np.ndarray:
        """The whole array (the caller checks :attr:`nbytes` against its budget first)."""
        raise NotImplementedError

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        """The block ``start:stop`` of ``axis`` (one of :attr:`stream_axes`), all of the other axes."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open handles (no-op unless the source holds one)."""


class MemorySource(ArraySource):
    """An array already in memory."""

    def __init__(self, name: str, array: np.ndarray):
        super().__init__(name, array.shape, array.dtype, tuple(range(array.ndim)))
        self.array = array

    def read_all(self) -> np.ndarray:
        """The array itself."""
        return self.array

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        """A view of the block."""
        sel = [slice(None)] * self.ndim
        sel[axis] = slice(start, stop)
        return self.array[tuple(sel)]


def _parse_npy_header(path: Path, what: str, read) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """Parse a ``.npy`` header from the byte reader ``read`` (at most :data:`_MAX_HEADER` bytes read);
    returns (dtype, shape, fortran_order, header length)."""
    head = read(10)
    if len(head) < 10 or head[:6] != _NPY_MAGIC:
        raise file_error(path, f"{what} is not a readable .npy array (no NumPy header)")
    major = head[6]
    if major == 1:
        hlen, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3):
        head += read(2)
        hlen, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise file_error(path, f"{what} has an unknown .npy format version {major}")
    if hlen > _MAX_HEADER:
        raise ImplausibleSizeError(
            f"channel file {str(path)!r}: {what} has a .npy header of {hlen} bytes (a real one is under "
            f"{_MAX_HEADER}); refused before reading"
        )
    text = read(hlen)
    if len(text) < hlen:
        raise file_error(path, f"{what} is truncated inside its .npy header")
    try:
        d = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
        shape, fortran, descr = d["shape"], d["fortran_order"], d["descr"]
        if (
            not isinstance(shape, tuple)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
            or not isinstance(fortran, bool)
        ):
            raise ValueError(f"bad shape {shape!r} or fortran_order {fortran!r}")
        dtype = np.lib.format.descr_to_dtype(descr)
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as e:
        raise file_error(path, f"{what} has an unreadable .npy header ({type(e).__name__}: {e})") from None
    if dtype.hasobject:
        raise file_error(
            path,
            f"{what} holds an object array (dtype {dtype}) that cannot be read without pickle; store plain "
            "numeric arrays",
        )
    return dtype, tuple(shape), fortran, start + hlen


def _readinto_all(f, buf: np.ndarray) -> int:
    """Fill ``buf`` from the binary file ``f``; returns the bytes read (short at the end of the data)."""
    view = memoryview(buf).cast("B")
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class _NpyBytes(ArraySource):
    """A C- or Fortran-order ``.npy`` payload at ``offset`` of a byte stream; blocks of axis 0 of a C-order
    array are read sequentially (re-opening the stream to go back)."""

    def __init__(self, path: Path, name: str, shape, dtype, fortran: bool, offset: int, what: str):
        stream = () if fortran or len(shape) == 0 else (0,)
        super().__init__(name, shape, dtype, stream)
        self.path, self.fortran, self.offset, self.what = path, fortran, offset, what
        self._fh = None
        self._next = 0  # the axis-0 index the open stream is at

    def _open(self):
        raise NotImplementedError

    def _stream_at(self, start: int):
        if self._fh is None or start < self._next:
            self.close()
            self._fh = self._open()
            self._skip(self.offset)
            self._next = 0
        if start > self._next:
            self._skip((start - self._next) * self._row_bytes())
            self._next = start
        return self._fh

    def _skip(self, n: int) -> None:
        if self._fh.seekable():
            self._fh.seek(n, 1)
            return
        while n > 0:
            got = len(self._fh.read(min(n, 2**22)))
            if not got:
                raise file_error(self.path, f"{self.what} is truncated (its data ends early)")
            n -= got

    def _row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    def _fill(self, f, count: int) -> np.ndarray:
        buf = np.empty(count, dtype=self.dtype)
        got = _readinto_all(f, buf)
        if got < buf.nbytes:
            raise file_error(
                self.path,
                f"{self.what} is truncated: its data ends after {format_bytes(got)} of a "
                f"{format_bytes(buf.nbytes)} block",
            )
        return buf

    def read_all(self) -> np.ndarray:
        """The whole array."""
        f = self._stream_at(0)
        buf = self._fill(f, self.size)
        self.close()
        # [size] -> shape (in the file's order)
        return buf.reshape(self.shape, order="F" if self.fortran else "C")

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of axis 0 (C order)."""
        if axis not in self.stream_axes:
            raise ValueError(f"{self.what}: blocks are read along axis 0 only")
        f = self._stream_at(start)
        buf = self._fill(f, (stop - start) * math.prod(self.shape[1:]))
        self._next = stop
        return buf.reshape((stop - start,) + self.shape[1:])  # [rows * rest] -> [rows, *rest]

    def close(self) -> None:
        """Close the open stream."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class _NpyFile(_NpyBytes):
    def _open(self):
        return open(self.path, "rb")


class _NpzMember(_NpyBytes):
    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, *args):
        super().__init__(*args)
        self.zf, self.info = zf, info

    def _open(self):
        return self.zf.open(self.info)


class _Hdf5Dataset(ArraySource):
    """An HDF5 dataset; MATLAB v7.3 arrays are stored with their axes reversed (``transposed``) and complex
    compounds (fields real/imag or r/i) are read as complex."""

    def __init__(self, name: str, ds: h5py.Dataset, transposed: bool, pair: tuple[str, str] | None):
        shape = tuple(ds.shape)[::-1] if transposed else tuple(ds.shape)
        if pair is not None:
            re, im = ds.dtype[pair[0]], ds.dtype[pair[1]]
            dtype = np.complex64 if re.itemsize <= 4 and im.itemsize <= 4 else np.complex128
        else:
            dtype = ds.dtype
        super().__init__(name, shape, dtype, tuple(range(len(shape))))
        self.ds, self.transposed, self.pair = ds, transposed, pair

    def _convert(self, a) -> np.ndarray:
        a = np.asarray(a)
        if self.pair is not None:
            re, im = a[self.pair[0]].astype(self.dtype), a[self.pair[1]].astype(self.dtype)
            a = (re + 1j * im).astype(self.dtype)
        if self.transposed:
            a = np.transpose(a)  # MATLAB is column-major: [..., b, a] stored -> [a, b, ...]
        return a

    def read_all(self) -> np.ndarray:
        """The whole dataset."""
        return self._convert(self.ds[()])

    def read(self, axis: int, start: int, stop: int) -> np.ndarray:
        """The block ``start:stop`` of (logical) ``axis``, by hyperslab."""
        sel = [slice(None)] * self.ndim
        sel[self.ndim - 1 - axis if self.transposed else axis] = slice(start, stop)
        return self._convert(self.ds[tuple(sel)])


class Container:
    """An open file: ``sources`` (name -> :class:`ArraySource`), ``listing`` (every variable: name, shape,
    type; for messages) and ``rejected`` (name -> the error that reading it raises, raised only if the
    variable is needed). Close it (or use it as a context manager) to release the file."""

    def __init__(self, sources: dict, listing: list, rejected: dict | None = None, handle=None):
        self.sources = sources
        self.listing = listing
        self.rejected = rejected or {}
        self._handle = handle

    def has(self, key: str) -> bool:
        """Whether ``key`` is in the file (readable or rejected)."""
        return key in self.sources or key in self.rejected

    def get(self, key: str) -> ArraySource:
        """The source ``key``; raises the stored error if it cannot be read."""
        if key in self.rejected:
            raise self.rejected[key]
        return self.sources[key]

    def close(self) -> None:
        """Close every source and the file."""
        for s in self.sources.values():
            s.close()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# openers


def _open_npy(path: Path) -> Container:
    size = path.stat().st_size
    with open(path, "rb") as f:
        dtype, shape, fortran, offset = _parse_npy_header(path, "the array", f.read)
    src = _NpyFile(path, "H", shape, dtype, fortran, offset, "the array")
    payload = size - offset
    if src.nbytes > payload:
        raise ImplausibleSizeError(
            f"channel file {str(path)!r}: is not a readable .npy file: it declares {list(shape)} {dtype} "
            f"({format_bytes(src.nbytes)}) but holds only {format_bytes(payload)} of data (a truncated file "
            "or a forged header); refused before reading"
        )
    return Container({"H": src}, [("H", list(shape), str(dtype))])


_STORED, _DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


def _open_npz(path: Path, names: tuple[str, ...], import_names: tuple[str, ...]) -> Container:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise file_error(path, f"is not a readable .npz archive ({e})") from None
    try:
        return _npz_members(path, zf, names, import_names)
    except BaseException:
        zf.close()
        raise


def _npz_members(path: Path, zf: zipfile.ZipFile, names, import_names) -> Container:
    sources: dict[str, ArraySource] = {}
    rejected: dict[str, MimofmInputError] = {}
    listing: list = []
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            continue
        key = info.filename[:-4]
        wanted = key in names
        if not wanted and len(listing) >= _MAX_LISTED:
            continue
        what = f"`{key}`"
        try:
            if info.compress_type not in (_STORED, _DEFLATED):
                raise file_error(
                    path,
                    f"{what} uses zip compression method {info.compress_type}; np.savez writes stored or "
                    "deflated members: re-save it with np.savez / np.savez_compressed",
                )
            if info.compress_type == _STORED and info.file_size != info.compress_size:
                raise ImplausibleSizeError(
                    f"channel file {str(path)!r}: {what} is stored uncompressed but declares "
                    f"{info.file_size} bytes for {info.compress_size} stored: a forged zip entry"
                )
            check_ratio(path, f"zip member {what}", info.file_size, info.compress_size)
            with zf.open(info) as fh:
                dtype, shape, fortran, offset = _parse_npy_header(path, what, fh.read)
            src = _NpzMember(zf, info, path, key, shape, dtype, fortran, offset, what)
            if offset + src.nbytes > info.file_size:
                raise ImplausibleSizeError(
                    f"channel file {str(path)!r}: {what} declares {list(shape)} {dtype} "
                    f"({format_bytes(src.nbytes)}) but its zip member holds only "
                    f"{format_bytes(max(info.file_size - offset, 0))} of data (a forged header or a "
                    "truncated archive); refused before reading"
                )
        except MimofmInputError as e:
            if not wanted:
                continue
            if key in import_names:
                raise
            rejected[key] = e  # raised only if this variable is the channel asked for
            listing.append((key, [], "unreadable"))
            continue
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            if not wanted:
                continue
            raise file_error(path, f"is not a readable .npz archive ({type(e).__name__}: {e})") from None
        if len(listing) < _MAX_LISTED:
            listing.append((key, list(shape), str(dtype)))
        if wanted:
            sources[key] = src
    return Container(sources, listing, rejected, handle=zf)


def _hdf5_source(path: Path, f, key: str, matlab: bool) -> tuple[ArraySource, str | None]:
    """The source of the dataset ``key`` (checked: a dataset, no links out, numeric, plausible sizes) and its
    MATLAB class."""
    obj = hdf5_lookup(path, f, key)
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
    names = obj.dtype.names
    pair = None
    if names is not None:
        pair = next((p for p in (("real", "imag"), ("r", "i")) if set(names) == set(p)), None)
        if pair is None:
            raise file_error(
                path,
                f"`{key}` has a compound dtype with fields {list(names)}; only complex "
                "compounds (fields real/imag or r/i) are read",
            )
        re, im = obj.dtype[pair[0]], obj.dtype[pair[1]]
        if re.kind not in "fiu" or im.kind not in "fiu" or re.shape or im.shape:
            raise file_error(path, f"`{key}` compound fields must be numeric, got {re}/{im}")
    elif obj.dtype.kind not in "biufcSU" or obj.dtype.subdtype is not None:
        raise file_error(path, f"`{key}` has an unsupported dtype {obj.dtype}; store a numeric array")
    check_hdf5_dataset(path, key, obj)
    return _Hdf5Dataset(key, obj, matlab, pair), cls


def _hdf5_listing(f) -> list:
    """Every dataset of an HDF5 file (name, shape, dtype), groups walked (links out are not), at most 50."""
    found: list = []

    def visit(name, obj):
        if len(found) >= _MAX_LISTED:
            return True  # stop the walk
        if isinstance(obj, h5py.Dataset) and not name.startswith("#refs#"):
            found.append((name, list(obj.shape), str(obj.dtype)))
        return None

    f.visititems(visit)
    return found


_MAX_META = 16 * 2**20


def _meta_source(path: Path, text) -> MemorySource:
    text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)
    return MemorySource("meta_json", np.array(text))


def _open_hdf5(path: Path, matlab: bool, names: tuple[str, ...], import_names: tuple[str, ...]) -> Container:
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise file_error(path, f"is not a readable HDF5 file (truncated or corrupt?): {e}") from None
    try:
        return _hdf5_members(path, f, matlab, names, import_names)
    except BaseException:
        f.close()
        raise


def _hdf5_members(path: Path, f, matlab: bool, names, import_names) -> Container:
    sources: dict[str, ArraySource] = {}
    rejected: dict[str, MimofmInputError] = {}
    for k in names:
        if k == "meta_json":
            continue
        try:
            if hdf5_lookup(path, f, k) is None:
                continue
            sources[k], _ = _hdf5_source(path, f, k, matlab)
        except MimofmInputError as e:
            if k in import_names:
                raise
            rejected[k] = e  # raised only if this variable is the channel asked for
    obj = hdf5_lookup(path, f, "meta_json")
    if obj is not None:
        if matlab:
            src, cls = _hdf5_source(path, f, "meta_json", matlab)
            if src.nbytes > _MAX_META:
                raise file_error(path, f"`meta_json` is {format_bytes(src.nbytes)}, more than 16 MiB")
            a = src.read_all()
            if cls == "char":
                # MATLAB chars: the transposed back array, read in column-major order -> the string
                a = np.array("".join(chr(c) for c in np.transpose(a).ravel(order="F").tolist()))
            sources["meta_json"] = MemorySource("meta_json", a)
        elif (
            isinstance(obj, h5py.Dataset)
            and h5py.check_string_dtype(obj.dtype) is not None
            and obj.shape == ()
        ):
            check_hdf5_dataset(path, "meta_json", obj)
            sources["meta_json"] = _meta_source(path, obj[()])
        else:
            raise file_error(
                path, "`meta_json` must be a scalar string (root attribute or dataset) holding JSON"
            )
    if "meta_json" in f.attrs:
        sources["meta_json"] = _meta_source(path, f.attrs["meta_json"])
    listing = _hdf5_listing(f)
    if matlab:  # shapes as MATLAB shows them (column-major: stored reversed)
        listing = [(n, shape[::-1], dt) for n, shape, dt in listing]
    return Container(sources, listing, rejected, handle=f)


def open_container(path: Path, fmt: str, names: tuple[str, ...], import_names: tuple[str, ...]) -> Container:
    """Open ``path`` (format ``fmt`` of :func:`~mimofm.channels.formats.detect_format`: ``npy``, ``npz``,
    ``hdf5`` or ``mat-v7.3``) and check the headers of the variables ``names``; nothing else is read.

    A problem with one of ``import_names`` raises; with another wanted variable it is kept in
    :attr:`Container.rejected` (raised only if that variable is asked for).
    """
    if fmt == "npy":
        return _open_npy(path)
    if fmt == "npz":
        return _open_npz(path, names, import_names)
    if fmt in ("hdf5", "mat-v7.3"):
        return _open_hdf5(path, fmt == "mat-v7.3", names, import_names)
    raise ValueError(f"no lazy reader for format {fmt!r}")
