"""Every row of docs/errors.md raises MimofmInputError with the documented text."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mimofm.channels.bundled import bundled_dir
from mimofm.channels.io import load_channels
from mimofm.core.energy import energy
from mimofm.core.rates import sinr
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.evaluate import EvalConfig
from mimofm.precoders.linear import mrt, zf
from mimofm.precoders.qos import qos_power_min
from mimofm.precoders.registry import parse_precoders
from mimofm.precoders.wmmse import wmmse
from tests.channels import hostile

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("id", "---"):
            rows[cells[0]] = re.sub(r"^`+ ?| ?`+$", "", cells[3])
    return rows


def _h(k=2, n=4):
    g = torch.Generator().manual_seed(0)
    return torch.complex(torch.randn(k, n, generator=g), torch.randn(k, n, generator=g))


def _with_nan(h):
    h = h.clone()
    h[0, 0] = complex(float("nan"), 0.0)
    return h


def _npz(tmp, **arrays):
    p = tmp / "x.npz"
    np.savez(p, **arrays)
    return p


def _tampered(tmp):
    import shutil

    p = tmp / "t.h5"
    shutil.copy(bundled_dir() / "etoile-open.h5", p)
    with h5py.File(p, "r+") as f:
        f["H"][0, 0] = f["H"][0, 0] * 2
    return p


def _bad_split(tmp):
    from mimofm.adaptation.common import read_split_file

    cs = load_channels(bundled_dir() / "etoile-mixed.h5")
    np.save(tmp / "split.npy", np.zeros(cs.num_positions + 1, dtype=np.int8))
    read_split_file(tmp / "split.npy", cs)


def _onnx_output(tmp):
    from mimofm.export import export_fm_onnx
    from mimofm.models.zoo import load_fm

    export_fm_onnx(load_fm(), tmp / "fm.onnx", output="X")


CASES = {
    "nan-channel": lambda tmp: mrt(_with_nan(_h())),
    "zero-user": lambda tmp: zf(torch.zeros(2, 4, dtype=torch.complex64)),
    "real-channel": lambda tmp: zf(torch.ones(2, 4)),
    "rank-1-channel": lambda tmp: zf(torch.ones(4, dtype=torch.complex64)),
    "not-a-tensor": lambda tmp: mrt([[1.0, 2.0]]),
    "zf-k-gt-n": lambda tmp: zf(_h(8, 4)),
    "negative-power": lambda tmp: zf(_h(), power=-1.0),
    "zero-noise": lambda tmp: wmmse(_h(), noise_power=0.0),
    "precoder-shape": lambda tmp: sinr(_h(), torch.ones(3, 2, dtype=torch.complex64)),
    "negative-rate": lambda tmp: qos_power_min(_h(), torch.tensor([-1.0, 1.0])),
    "nan-rate": lambda tmp: qos_power_min(_h(), torch.tensor([float("nan"), 1.0])),
    "infeasible-rate": lambda tmp: qos_power_min(
        torch.stack([_h()[0], _h()[0]]), torch.ones(2), on_infeasible="raise"
    ),
    "unknown-precoder": lambda tmp: parse_precoders("zf,magic"),
    "unknown-setting": lambda tmp: wmmse(_h(), setting="fast"),
    "unknown-precision": lambda tmp: zf(_h(), precision="quad"),
    "bad-split": _bad_split,
    "onnx-output": _onnx_output,
    "unknown-scene": lambda tmp: (
        __import__("mimofm.channels.raytrace", fromlist=["SiteSpec"])
        .SiteSpec("x", "atlantis", (0.0, 0.0))
        .validate()
    ),
    "unknown-site": lambda tmp: __import__("mimofm.channels.catalog", fromlist=["get_site"]).get_site(
        "atlantis"
    ),
    "missing-file": lambda tmp: load_channels(tmp / "nope.npz"),
    "object-array": lambda tmp: load_channels(_npz(tmp, H=np.array([object()], dtype=object))),
    "npz-real-h": lambda tmp: load_channels(_npz(tmp, H=np.ones((3, 2)))),
    "npz-nan-h": lambda tmp: load_channels(_npz(tmp, H=np.full((3, 2), np.nan + 0j))),
    "not-npz": lambda tmp: (tmp.joinpath("junk.npz").write_bytes(b"junk"), load_channels(tmp / "junk.npz")),
    "transposed-h": lambda tmp: load_channels(_npz(tmp, H=np.ones((64, 1000), dtype=np.complex64))),
    "import-zero-row": lambda tmp: load_channels(
        _npz(tmp, H=np.ones((6, 3), dtype=np.complex64) * (np.arange(6) != 1)[:, None])
    ),
    "tiny-gain": lambda tmp: load_channels(_npz(tmp, H=np.full((6, 3), 1e-17, dtype=np.complex64))),
    "ambiguous-layout": lambda tmp: load_channels(_npz(tmp, H=np.ones((20, 32, 64), dtype=np.complex64))),
    "no-channel-array": lambda tmp: load_channels(_npz(tmp, X=np.ones((6, 3), dtype=np.complex64))),
    "bad-layout": lambda tmp: load_channels(_npz(tmp, H=np.ones((6, 3), dtype=np.complex64)), layout="n,bs"),
    "tampered-site": lambda tmp: load_channels(_tampered(tmp)),
    "snr-both": lambda tmp: EvalConfig(precoders=["zf"], snr_db=[1.0], noise_dbm=[-90.0]).validate(),
    "bad-snr-list": lambda tmp: __import__("mimofm.cli._common", fromlist=["parse_floats"]).parse_floats(
        "a,b", "--snr-db"
    ),
    "few-samples": lambda tmp: EvalConfig(precoders=["zf"], snr_db=[1.0], samples=1).validate(),
    "energy-range": lambda tmp: energy(torch.tensor([2.0]), torch.tensor(0.5), 20.0, 1.0),
    "hdf5-external-link": lambda tmp: load_channels(hostile.hdf5_external_link(tmp / "x.h5")),
    "hdf5-virtual": lambda tmp: load_channels(hostile.hdf5_virtual(tmp / "x.h5")),
    "hdf5-external-storage": lambda tmp: load_channels(hostile.hdf5_external_storage(tmp / "x.h5")),
    "implausible-ratio": lambda tmp: load_channels(hostile.npz_forged_size(tmp / "x.npz")),
    "forged-npy-header": lambda tmp: load_channels(hostile.npy_declared_huge(tmp / "x.npy")),
    "huge-hdf5-chunk": lambda tmp: load_channels(hostile.hdf5_huge_chunk(tmp / "x.h5")),
    "over-budget": lambda tmp: load_channels(
        _npz(tmp, H=np.ones((99_999, 8), np.complex64)), max_memory="1M"
    ),
    "aux-too-large": lambda tmp: load_channels(
        _npz(tmp, H=np.ones((6, 3), np.complex64), los=np.ones(100, bool) * np.ones((1000, 1), bool))
    ),
    "out-symlink": lambda tmp: (
        tmp.joinpath("o.h5").symlink_to(tmp / "nowhere.h5"),
        __import__("mimofm.cli.data", fromlist=["_check_out"])._check_out(
            tmp / "a.npz", tmp / "o.h5", (".h5",), False
        ),
    ),
    "raw-gains": lambda tmp: __import__("mimofm.api", fromlist=["load_precoder"]).load_precoder("zf")(
        _h(4, 8) * 1e-5
    ),
}


def test_doc_and_cases_list_the_same_rows():
    assert set(_rows()) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_input(case, tmp_path):
    with pytest.raises(MimofmInputError) as e:
        CASES[case](tmp_path)
    assert _rows()[case] in str(e.value), str(e.value)
