"""Header-level lies for the importer fuzzers: files whose headers declare what their payload does not hold
(shapes, dtypes, zip sizes, HDF5 chunks and filters, unwritten chunks), and HDF5 link objects (external,
soft, looping, virtual, external storage). Each builder takes a NumPy ``Generator`` and a folder and writes
one file; :data:`BUILDERS` maps an importer to its builder. Shared by tests/fuzz/test_fuzz.py (a small
deterministic sample) and benchmarks/fuzz_importers.py (10 000 cases per importer)."""

import io
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np

from mimofm.channels.bundled import bundled_dir

DESCRS = [
    "<c8",
    ">c16",
    "<c16",
    "<f4",
    "<f8",
    "|b1",
    "<i8",
    "<U4",
    "|O",
    "|V16",
    [("r", "<f4"), ("i", "<f4")],
]


def _dim(rng) -> int:
    r = rng.random()
    if r < 0.5:
        return int(rng.integers(0, 12))
    if r < 0.8:
        return int(rng.integers(12, 5000))
    return int(rng.choice([2**31, 2**32 + 1, 10**12, 2**62, 20_000_000]))


def _shape(rng, max_ndim: int = 4) -> tuple[int, ...]:
    return tuple(_dim(rng) for _ in range(int(rng.integers(0, max_ndim + 1))))


def _good(rng, n: int = 12, nt: int = 4) -> np.ndarray:
    return (rng.normal(size=(n, nt)) + 1j * rng.normal(size=(n, nt))).astype(np.complex64)


def _npy_bytes(rng, descr=None, shape=None, fortran=None, payload: bytes | None = None) -> bytes:
    descr = descr if descr is not None else DESCRS[int(rng.integers(len(DESCRS)))]
    shape = shape if shape is not None else _shape(rng)
    fortran = bool(rng.integers(2)) if fortran is None else fortran
    b = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran, "shape": shape}
    if rng.random() < 0.1:  # a header that is not a dict literal of the right keys
        raw = repr({"descr": descr, "shape": shape, "extra": [1] * int(rng.integers(0, 50))}).encode()
        b.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw) + 1) + raw + b"\n")
    else:
        np.lib.format.write_array_header_1_0(b, header)
    if payload is None:
        good = _good(rng, int(rng.integers(1, 40)), int(rng.integers(1, 9))).tobytes()
        payload = good[: int(rng.integers(0, len(good) + 1))]
    return b.getvalue() + payload


def npy_lie(rng, folder: Path) -> Path:
    """A .npy whose header declares a random shape/dtype/order over a random payload."""
    p = folder / "lie.npy"
    p.write_bytes(_npy_bytes(rng))
    return p


def npz_lie(rng, folder: Path) -> Path:
    """A .npz whose members lie in their .npy headers or in the zip's size fields."""
    p = folder / "lie.npz"
    method = zipfile.ZIP_STORED if rng.random() < 0.5 else zipfile.ZIP_DEFLATED
    h = _good(rng)
    with zipfile.ZipFile(p, "w", compression=method) as z:
        if rng.random() < 0.6:
            z.writestr("H.npy", _npy_bytes(rng))
        else:
            b = io.BytesIO()
            np.save(b, h)
            z.writestr("H.npy", b.getvalue())
        written = set()
        for aux in ("los", "positions", "split", "tau", "meta_json"):
            if rng.random() < 0.3:
                z.writestr(f"{aux}.npy", _npy_bytes(rng))
                written.add(aux)
        if (
            "los" not in written and rng.random() < 0.2
        ):  # a member of deflated zeros under a valid header (a small bomb)
            with z.open("los.npy", "w", force_zip64=True) as fh:
                n = int(rng.integers(1, 1 << 22))
                b = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    b, {"descr": "|b1", "fortran_order": False, "shape": (n,)}
                )
                fh.write(b.getvalue() + bytes(n))
    data = bytearray(p.read_bytes())
    for _ in range(int(rng.integers(0, 3))):  # forge size fields of central-directory or local headers
        sig = b"PK\x01\x02" if rng.random() < 0.7 else b"PK\x03\x04"
        hits = [i for i in range(len(data)) if data.startswith(sig, i)]
        if not hits:
            break
        at = hits[int(rng.integers(len(hits)))]
        off = {b"PK\x01\x02": (20, 24), b"PK\x03\x04": (18, 22)}[sig][int(rng.integers(2))]
        value = int(rng.choice([0, 1, 2**20, 2**31 - 1, 0xFFFFFFFF, int(rng.integers(0, 2**32))]))
        struct.pack_into("<I", data, at + off, value)
    p.write_bytes(bytes(data))
    return p


def _h5_dataset(rng, f, name: str, other: Path) -> None:
    """``name`` as a random dataset (dtype, shape, chunks, filter, written or not) or a link object."""
    kind = rng.choice(["dataset", "dataset", "dataset", "external", "soft", "loop", "virtual", "storage"])
    if kind == "external":
        f[name] = h5py.ExternalLink(str(other), "H")
        return
    if kind == "soft":
        f["target_" + name] = h5py.ExternalLink(str(other), "H") if rng.random() < 0.5 else _good(rng)
        f[name] = h5py.SoftLink("/target_" + name)
        return
    if kind == "loop":
        f[name] = h5py.SoftLink("/loop_" + name)
        f["loop_" + name] = h5py.SoftLink("/" + name)
        return
    if kind == "virtual":
        layout = h5py.VirtualLayout(shape=(12, 4), dtype=np.complex64)
        layout[:] = h5py.VirtualSource(str(other), "H", shape=(12, 4))
        f.create_virtual_dataset(name, layout)
        return
    if kind == "storage":
        raw = other.with_suffix(".bin")
        raw.write_bytes(_good(rng).tobytes())
        f.create_dataset(name, shape=(12, 4), dtype=np.complex64, external=[(str(raw), 0, 12 * 4 * 8)])
        return
    dtype = np.dtype(
        rng.choice(["<c8", "<c16", "<f4", "<i4", "|b1"])
        if rng.random() < 0.85
        else [("r", "<f4"), ("i", "<f4")]
    )
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(rng.choice([1, 3, 4, 12, 40, 5000, 20_000_000, 2**31])) for _ in range(ndim))
    big = np.prod(np.array(shape, dtype=float)) > 1e6
    chunks = None
    compression = None
    if big or rng.random() < 0.5:
        chunks = tuple(max(1, min(s, int(rng.choice([1, 7, 4096, 1 << 20])))) for s in shape)
        compression = "gzip" if rng.random() < 0.7 else None
    try:
        ds = f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, compression=compression)
    except (ValueError, OSError):
        f[name] = _good(rng)
        return
    if not big and rng.random() < 0.8:  # written (else only the fill value stands for it)
        values = rng.normal(size=shape) + 1j * rng.normal(size=shape)
        if dtype.names:
            data = np.empty(shape, dtype=dtype)
            data["r"], data["i"] = values.real, values.imag
        else:
            data = values if dtype.kind == "c" else values.real
        ds[...] = data.astype(dtype) if not dtype.names else data


def hdf5_lie(rng, folder: Path, matlab: bool = False) -> Path:
    """An HDF5 file (or MATLAB v7.3 with ``matlab``) with random datasets and link objects."""
    other = folder / "other.h5"
    with h5py.File(other, "w") as f:
        f["H"] = _good(rng)
    p = folder / ("lie.mat" if matlab else "lie.h5")
    with h5py.File(p, "w", userblock_size=512 if matlab else 0) as f:
        names = ["H"] if rng.random() < 0.7 else ["H_real", "H_imag"]
        for name in names + [
            a for a in ("los", "positions", "split", "channel", "tau") if rng.random() < 0.3
        ]:
            _h5_dataset(rng, f, name, other)
        if rng.random() < 0.2:
            f["grp"] = h5py.ExternalLink(str(other), "/")
    if matlab:
        with open(p, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, fuzz")
    return p


def mat73_lie(rng, folder: Path) -> Path:
    """:func:`hdf5_lie` as a MATLAB v7.3 file."""
    return hdf5_lie(rng, folder, matlab=True)


def site_lie(rng, folder: Path) -> Path:
    """A site file whose datasets are replaced by lying datasets or link objects."""
    p = folder / "site.h5"
    shutil.copy(bundled_dir() / "etoile-open.h5", p)
    other = folder / "other.h5"
    with h5py.File(other, "w") as f:
        f["H"] = _good(rng)
    with h5py.File(p, "r+") as f:
        for name in ("H", "los", "positions", "split"):
            if name in f and rng.random() < (0.7 if name == "H" else 0.3):
                del f[name]
                _h5_dataset(rng, f, name, other)
    return p


BUILDERS = {".npy": npy_lie, ".npz": npz_lie, ".h5": hdf5_lie, ".mat": mat73_lie, "site": site_lie}
