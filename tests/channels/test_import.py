"""Importers: every format gives the same channels; anything needing pickle or not numeric is rejected."""

import json

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch

from mimofm.channels.formats import detect_format
from mimofm.channels.io import export_npz, load_channels
from mimofm.channels.types import ChannelSet
from mimofm.core.validation import MimofmInputError

P, A = 12, 5
C = np.ones((4, 3), dtype=np.complex64)


@pytest.fixture
def ref():
    rng = np.random.default_rng(7)
    h = ((rng.normal(size=(P, A)) + 1j * rng.normal(size=(P, A))) * 1e-4).astype(np.complex64)
    los = rng.random(P) < 0.5
    pos = rng.uniform(-50, 50, size=(P, 3))
    return h, los, pos


def _mat73(path, variables: dict, header=True):
    """A MATLAB v7.3 file as MATLAB writes it: 512-byte user block, column-major (transposed) arrays,
    complex as a compound {real, imag}, logical as uint8, char as uint16, each with MATLAB_class."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, v in variables.items():
            v = np.asarray(v)
            if v.dtype.kind == "U":
                ds = f.create_dataset(key, data=np.array([ord(c) for c in str(v)], dtype=np.uint16)[:, None])
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                continue
            if v.ndim == 1:
                v = v[:, None]  # MATLAB has no 1-D arrays: a P×1 column
            cls = {"b": "logical", "c": "single" if v.dtype == np.complex64 else "double"}.get(
                v.dtype.kind, "double"
            )
            if v.dtype.kind == "c":
                ft = np.float32 if v.dtype == np.complex64 else np.float64
                comp = np.empty(v.shape, dtype=[("real", ft), ("imag", ft)])
                comp["real"], comp["imag"] = v.real, v.imag
                v = comp
            elif v.dtype == bool:
                v = v.astype(np.uint8)
            ds = f.create_dataset(key, data=v.T)  # column-major on disk
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
    if header:
        with open(path, "r+b") as fh:
            fh.write(
                b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
                b"HDF5 schema 1.00 ."
            )


def _writers(h, los, pos):
    meta = json.dumps({"scene": "toy", "fc_hz": 3.5e9})

    def npy(p):
        np.save(p, h)

    def npz(p):
        np.savez(p, H=h, los=los, positions=pos, meta_json=meta)

    def mat5(p):
        scipy.io.savemat(
            p,
            {
                "H": h,
                "los": los,
                "positions": pos,
                "meta_json": meta,
                "other": np.array([1, "x"], dtype=object),
            },
        )

    def mat73(p):
        _mat73(p, {"H": h, "los": los, "positions": pos, "meta_json": meta})

    def mat73_noheader(p):
        _mat73(p, {"H": h, "los": los, "positions": pos}, header=False)

    def mat73_as_h5(p):  # a v7.3 file renamed .h5: recognised by its header
        _mat73(p, {"H": h, "los": los, "positions": pos})

    def h5_complex(p):
        with h5py.File(p, "w") as f:
            f["H"], f["los"], f["positions"] = h, los, pos
            f.attrs["meta_json"] = meta

    def h5_pairs(p):
        with h5py.File(p, "w") as f:
            f["H_real"], f["H_imag"], f["los"], f["positions"] = h.real, h.imag, los.astype(np.uint8), pos

    def h5_compound(p):
        comp = np.empty(h.shape, dtype=[("real", np.float32), ("imag", np.float32)])
        comp["real"], comp["imag"] = h.real, h.imag
        with h5py.File(p, "w") as f:
            f["H"] = comp
            f["los"] = los

    return {
        "a.npy": npy,
        "b.npz": npz,
        "c.mat": mat5,
        "d.mat": mat73,
        "e.mat": mat73_noheader,
        "f.h5": mat73_as_h5,
        "g.h5": h5_complex,
        "h.hdf5": h5_pairs,
        "i.h5": h5_compound,
    }


FORMATS = {
    "a.npy": "npy",
    "b.npz": "npz",
    "c.mat": "mat-v5",
    "d.mat": "mat-v7.3",
    "e.mat": "mat-v7.3",
    "f.h5": "mat-v7.3",
    "g.h5": "hdf5",
    "h.hdf5": "hdf5",
    "i.h5": "hdf5",
}


@pytest.mark.parametrize("fname", list(FORMATS))
def test_every_format_gives_the_same_channels(tmp_path, ref, fname):
    h, los, pos = ref
    p = tmp_path / fname
    _writers(h, los, pos)[fname](p)
    assert detect_format(p) == FORMATS[fname]
    cs = load_channels(p)
    assert cs.h.shape == (P, A) and cs.h.is_complex()
    torch.testing.assert_close(cs.h.to(torch.complex64), torch.from_numpy(h), rtol=0, atol=0)
    if fname != "a.npy":
        assert cs.los.dtype == torch.bool and np.array_equal(cs.los.numpy(), los)
    if fname not in ("a.npy", "i.h5"):
        assert cs.positions.dtype == torch.float64 and np.array_equal(cs.positions.numpy(), pos)
    if fname in ("b.npz", "c.mat", "d.mat", "g.h5"):
        assert cs.meta == {"scene": "toy", "fc_hz": 3.5e9}
    assert cs.name == p.stem


def test_export_npz_roundtrip_with_split(tmp_path, ref):
    h, los, pos = ref
    split = torch.from_numpy((np.arange(P) % 3).astype(np.int8))
    cs = ChannelSet("x", torch.from_numpy(h), torch.from_numpy(los), torch.from_numpy(pos), {"k": 1}, split)
    export_npz(cs, tmp_path / "x.npz")
    back = load_channels(tmp_path / "x.npz")
    assert torch.equal(back.h, cs.h) and torch.equal(back.split, split) and back.meta["k"] == 1
    with pytest.raises(MimofmInputError, match=r"\.npz"):
        export_npz(cs, tmp_path / "x.h5")


def _cell_73(p):
    with h5py.File(p, "w", userblock_size=512) as f:
        f.create_group("#refs#")["a"] = np.zeros(3)
        ds = f.create_dataset("H", data=np.array([[f["#refs#/a"].ref]]), dtype=h5py.ref_dtype)
        ds.attrs["MATLAB_class"] = np.bytes_("cell")


def _sparse_73(p):
    with h5py.File(p, "w") as f:
        g = f.create_group("H")
        g["data"], g["ir"], g["jc"] = np.ones(2), np.array([0, 1]), np.array([0, 1, 2])


def _h5(**datasets):
    def w(p):
        with h5py.File(p, "w") as f:
            for k, v in datasets.items():
                f[k] = v

    return w


def _meta_list_h5(p):
    with h5py.File(p, "w") as f:
        f["H"] = C
        f.attrs["meta_json"] = "[1]"


def _vlen_h5(p):
    with h5py.File(p, "w") as f:
        f.create_dataset("H", data=np.array(["a", "b"], dtype=object), dtype=h5py.string_dtype())


@pytest.mark.parametrize(
    "fname, write, match",
    [
        ("o.npy", lambda p: np.save(p, np.array([object(), 1], dtype=object), allow_pickle=True), "pickle"),
        ("o.npz", lambda p: np.savez(p, H=np.array([object()], dtype=object)), "pickle"),
        ("cell.mat", lambda p: scipy.io.savemat(p, {"H": np.array([C, C], dtype=object)}), "cell array"),
        ("struct.mat", lambda p: scipy.io.savemat(p, {"H": {"re": np.ones(3)}}), "struct"),
        ("sparse.mat", lambda p: scipy.io.savemat(p, {"H": scipy.sparse.csc_matrix(C)}), "sparse"),
        ("real.mat", lambda p: scipy.io.savemat(p, {"H": np.ones((4, 3))}), "must be complex"),
        ("none.mat", lambda p: scipy.io.savemat(p, {"X": C}), "no `H`"),
        ("cell73.mat", _cell_73, "cell array"),
        ("sparse73.mat", _sparse_73, "group"),
        ("vlen.h5", _vlen_h5, "variable-length"),
        ("real.h5", _h5(H=np.ones((4, 3))), "H_real"),
        ("pairs.h5", _h5(H_real=np.ones((4, 3)), H_imag=np.ones((3, 4))), "differ in shape"),
        ("half.h5", _h5(H_real=np.ones((4, 3))), "both are needed"),
        ("both.h5", _h5(H=C, H_real=np.ones((4, 3)), H_imag=np.ones((4, 3))), "keep one"),
        ("cmpd.h5", _h5(H=np.zeros(3, dtype=[("a", "f4"), ("b", "f4")])), "compound"),
        ("nan.h5", _h5(H=np.full((4, 3), np.nan, dtype=np.complex64)), "NaN"),
        ("zero.mat", lambda p: scipy.io.savemat(p, {"H": np.zeros((4, 3), dtype=np.complex64)}), "all-zero"),
        (
            "transposed.h5",
            _h5(H=np.ones((3, 8), dtype=np.complex64), los=np.ones(8, dtype=bool)),
            "transposed",
        ),
        ("los.npz", lambda p: np.savez(p, H=C, los=np.array([0, 1, 2, 1])), "0/1"),
        ("split.npz", lambda p: np.savez(p, H=C, split=np.array([0, 1, 5, 1])), "`split`"),
        ("posnan.npz", lambda p: np.savez(p, H=C, positions=np.full((4, 3), np.inf)), "`positions`"),
        ("meta.h5", _meta_list_h5, "JSON object"),
        ("v4.mat", lambda p: p.write_bytes(b"\x00" * 200), "v4"),
        ("empty.npy", lambda p: p.write_bytes(b""), "empty"),
        ("junk.h5", lambda p: p.write_bytes(b"junk" * 100), "not an HDF5 file"),
        ("junk.npy", lambda p: p.write_bytes(b"junk" * 100), "NumPy header"),
        ("trunc.npy", lambda p: p.write_bytes(_npy_bytes()[:-40]), "not a readable .npy"),
        ("x.csv", lambda p: p.write_text("1,2"), "unsupported extension"),
    ],
)
def test_bad_imports_rejected_clearly(tmp_path, fname, write, match):
    p = tmp_path / fname
    write(p)
    with pytest.raises(MimofmInputError, match=match) as e:
        load_channels(p)
    assert str(p) in str(e.value)


def _npy_bytes():
    import io

    buf = io.BytesIO()
    np.save(buf, C)
    return buf.getvalue()


def test_mat5_vectors_and_other_variables(tmp_path, ref):
    """MATLAB row/column vectors are squeezed; unrelated variables (even cells) are never read."""
    h, los, _ = ref
    scipy.io.savemat(
        tmp_path / "v.mat",
        {
            "H": h,
            "los": los.astype(float)[:, None],
            "split": (np.arange(P) % 3)[None, :],
            "notes": np.array(["a", 1], dtype=object),
        },
    )
    cs = load_channels(tmp_path / "v.mat")
    assert np.array_equal(cs.los.numpy(), los) and cs.split.tolist() == (np.arange(P) % 3).tolist()


def test_missing_file(tmp_path):
    with pytest.raises(MimofmInputError, match="does not exist"):
        load_channels(tmp_path / "nope.h5")
    with pytest.raises(MimofmInputError, match="regular file"):
        load_channels(tmp_path)
