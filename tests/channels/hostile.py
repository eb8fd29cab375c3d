"""Hand-made hostile channel files (issue 27), shared by the tests, the fuzzers and
benchmarks/hostile_files.py. Each writer makes a small file whose headers lie about its data, or whose
objects point outside it; ``scale`` grows the declared sizes for the benchmark (the tests use small ones)."""

import io
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np


def _npy_header(shape, descr="<c8", fortran=False) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    return b.getvalue()


def npy_declared_huge(p: Path, rows: int = 10**12) -> Path:
    """A .npy of ~200 bytes whose header declares ``rows`` × 64 complex64."""
    p.write_bytes(_npy_header((rows, 64)) + b"\0" * 64)
    return p


def hdf5_gzip_declared(p: Path, rows: int = 20_000_000, dtype=np.float32, name: str = "H") -> Path:
    """An HDF5 file of a few KB declaring a gzip-compressed ``rows`` × 64 dataset (chunks never written: the
    fill value stands for the data)."""
    with h5py.File(p, "w") as f:
        f.create_dataset(name, shape=(rows, 64), dtype=dtype, compression="gzip", chunks=(4096, 64))
        if name == "H_real":
            f.create_dataset("H_imag", shape=(rows, 64), dtype=dtype, compression="gzip", chunks=(4096, 64))
    return p


def hdf5_huge_chunk(p: Path) -> Path:
    """A complex64 H whose single chunk is 512 MiB (read and decompressed whole by HDF5)."""
    with h5py.File(p, "w") as f:
        f.create_dataset(
            "H", shape=(1 << 20, 64), dtype=np.complex64, chunks=(1 << 20, 64), compression="gzip"
        )
    return p


def _other(p: Path) -> Path:
    other = p.with_name(p.stem + "_secret.h5")
    rng = np.random.default_rng(1)
    with h5py.File(other, "w") as f:
        f["secret"] = (rng.normal(size=(40, 8)) + 1j * rng.normal(size=(40, 8))).astype(np.complex64)
        f["g/H"] = f["secret"][()]
    return other


def hdf5_external_link(p: Path, via: str = "dataset") -> Path:
    """``H`` (or the group holding it, or a soft link to it) is an external link to another file."""
    other = _other(p)
    with h5py.File(p, "w") as f:
        if via == "dataset":
            f["H"] = h5py.ExternalLink(str(other), "secret")
        elif via == "group":
            f["run"] = h5py.ExternalLink(str(other), "g")
        else:  # a soft link to an external link
            f["ext"] = h5py.ExternalLink(str(other), "secret")
            f["H"] = h5py.SoftLink("/ext")
    return p


def hdf5_virtual(p: Path) -> Path:
    """``H`` is a virtual dataset mapping another file's data."""
    other = _other(p)
    layout = h5py.VirtualLayout(shape=(40, 8), dtype=np.complex64)
    layout[:] = h5py.VirtualSource(str(other), "secret", shape=(40, 8))
    with h5py.File(p, "w") as f:
        f.create_virtual_dataset("H", layout)
    return p


def hdf5_external_storage(p: Path) -> Path:
    """``H`` stores its bytes in a raw file beside it (HDF5 external storage)."""
    raw = p.with_name(p.stem + "_raw.bin")
    rng = np.random.default_rng(2)
    raw.write_bytes((rng.normal(size=(40, 8)) + 1j).astype(np.complex64).tobytes())
    with h5py.File(p, "w") as f:
        f.create_dataset("H", shape=(40, 8), dtype=np.complex64, external=[(str(raw), 0, 40 * 8 * 8)])
    return p


def mat73_external_link(p: Path) -> Path:
    """A MATLAB v7.3 file (HDF5 with a 512-byte user block) whose ``H`` is an external link."""
    other = _other(p)
    with h5py.File(p, "w", userblock_size=512) as f:
        f["H"] = h5py.ExternalLink(str(other), "secret")
    with open(p, "r+b") as fh:
        fh.write(
            b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
        )
    return p


def site_external_link(p: Path, site: Path) -> Path:
    """A copy of the site file ``site`` whose ``H`` is an external link to the original."""
    with h5py.File(site, "r") as src, h5py.File(p, "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        for k in src:
            if k != "H":
                src.copy(k, f)
        f["H"] = h5py.ExternalLink(str(site), "H")
    return p


def npz_zip_bomb(p: Path, rows: int = 1 << 16, cols: int = 64) -> Path:
    """A deflated .npz whose ``H`` is ``rows`` × ``cols`` complex64 zeros (compresses about 1000:1)."""
    header = _npy_header((rows, cols))
    zeros = bytes(1 << 22)
    left = rows * cols * 8
    with (
        zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("H.npy", "w", force_zip64=True) as fh,
    ):
        fh.write(header)
        while left > 0:
            fh.write(zeros[: min(left, len(zeros))])
            left -= min(left, len(zeros))
    return p


def npz_forged_size(p: Path, declared: int = 4 * 2**30) -> Path:
    """A small valid .npz whose central directory claims ``H.npy`` inflates to ``declared`` bytes."""
    rng = np.random.default_rng(3)
    np.savez_compressed(p, H=(rng.normal(size=(40, 8)) + 1j).astype(np.complex64))
    data = bytearray(p.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # the (only) central directory entry
    struct.pack_into("<I", data, cd + 24, min(declared, 0xFFFFFFFE))  # uncompressed size
    p.write_bytes(bytes(data))
    return p


def npz_forged_header(p: Path, rows: int = 10**9) -> Path:
    """A stored .npz whose ``H.npy`` header declares ``rows`` × 8 complex64 for 40 rows of data."""
    rng = np.random.default_rng(4)
    h = (rng.normal(size=(40, 8)) + 1j).astype(np.complex64)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("H.npy", _npy_header((rows, 8)) + h.tobytes())
    return p


def npz_bomb_in_aux(p: Path, rows: int = 1 << 22) -> Path:
    """A valid ``H`` with a ``los`` that declares ``rows`` × 64 entries (deflated zeros)."""
    rng = np.random.default_rng(5)
    h = (rng.normal(size=(40, 8)) + 1j).astype(np.complex64)
    b = io.BytesIO()
    np.save(b, h)
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("H.npy", b.getvalue())
        with z.open("los.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header((rows, 64), descr="|b1"))
            left = rows * 64
            zeros = bytes(1 << 22)
            while left > 0:
                fh.write(zeros[: min(left, len(zeros))])
                left -= min(left, len(zeros))
    return p


# name -> (writer, the error class name, text the message contains); the writers' default sizes
CASES = {
    "npy-declared-huge": (npy_declared_huge, "ImplausibleSizeError", "holds only"),
    "hdf5-gzip-float32": (hdf5_gzip_declared, "ImplausibleSizeError", "implausible ratio"),
    "hdf5-gzip-pair": (
        lambda p: hdf5_gzip_declared(p, name="H_real"),
        "ImplausibleSizeError",
        "implausible ratio",
    ),
    "hdf5-gzip-complex": (
        lambda p: hdf5_gzip_declared(p, dtype=np.complex64),
        "ImplausibleSizeError",
        "implausible ratio",
    ),
    "hdf5-huge-chunk": (hdf5_huge_chunk, "ImplausibleSizeError", "HDF5 chunks of"),
    "hdf5-external-link": (hdf5_external_link, "ExternalDataError", "external link"),
    "hdf5-external-link-soft": (
        lambda p: hdf5_external_link(p, "soft"),
        "ExternalDataError",
        "external link",
    ),
    "hdf5-virtual": (hdf5_virtual, "ExternalDataError", "virtual dataset"),
    "hdf5-external-storage": (hdf5_external_storage, "ExternalDataError", "outside the file"),
    "mat73-external-link": (mat73_external_link, "ExternalDataError", "external link"),
    "npz-zip-bomb": (npz_zip_bomb, "MimofmInputError", "all-zero rows"),
    "npz-forged-size": (npz_forged_size, "ImplausibleSizeError", "implausible ratio"),
    "npz-forged-header": (npz_forged_header, "ImplausibleSizeError", "holds only"),
    "npz-bomb-in-aux": (npz_bomb_in_aux, "ImplausibleSizeError", "more than three per entry"),
}
SUFFIX = {"npy": ".npy", "hdf5": ".h5", "mat73": ".mat", "npz": ".npz"}


def write_case(name: str, folder: Path) -> Path:
    """Write the hostile file ``name`` of :data:`CASES` into ``folder``; returns its path."""
    writer = CASES[name][0]
    return writer(folder / f"{name}{SUFFIX[name.split('-')[0]]}")
