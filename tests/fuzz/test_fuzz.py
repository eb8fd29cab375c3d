"""Fuzz targets: every importer, the site-file reader, recipe files and the CLI's argument parsing.

Each target feeds mutated or random input — byte flips, and header-level lies (tests/fuzz/lies.py:
declared shapes against payloads, zip size fields, HDF5 chunks and unwritten data, link objects); the only
acceptable outcomes are success or the documented clean error (MimofmInputError; exit code 0 or 2
without a traceback for the CLI), within a 256 MiB memory budget. CI runs a bounded number of cases;
``MIMOFM_FUZZ_CASES=10000`` runs the long benchmark mode (benchmarks/fuzz_importers.py runs 10 000 cases
per importer).
"""

import contextlib
import io
import os
import shutil

import h5py
import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mimofm.channels.bundled import bundled_dir
from mimofm.channels.io import load_channels, site_info
from mimofm.cli.main import app
from mimofm.core.validation import MimofmInputError
from mimofm.training.recipes import load_recipe
from tests.fuzz.lies import BUILDERS

CASES = int(os.environ.get("MIMOFM_FUZZ_CASES", "60"))
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _seed_files(tmp) -> dict[str, bytes]:
    """One valid file per importer format (the corpus the mutations start from)."""
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4))).astype(np.complex64)
    out = {}
    b = io.BytesIO()
    np.savez(b, H=h, los=np.array([1, 0, 1, 0, 1, 0], dtype=bool))
    out[".npz"] = b.getvalue()
    b = io.BytesIO()
    np.save(b, h)
    out[".npy"] = b.getvalue()
    scipy.io.savemat(tmp / "m.mat", {"H": h})
    out[".mat"] = (tmp / "m.mat").read_bytes()
    with h5py.File(tmp / "p.hdf5", "w") as f:
        f["H"] = h
    out[".hdf5"] = (tmp / "p.hdf5").read_bytes()
    out[".h5"] = (bundled_dir() / "florence-dense.h5").read_bytes()[:200_000] + b""  # a truncated site file
    out[".h5-full"] = (bundled_dir() / "florence-dense.h5").read_bytes()
    return out


@st.composite
def mutated(draw, corpus: dict[str, bytes]):
    ext = draw(st.sampled_from(sorted(corpus)))
    data = bytearray(corpus[ext])
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[i : i + 8] = b"\0" * len(data[i : i + 8])
    return ext.split("-")[0], bytes(data)


def _fuzz_load(tmp, ext: str, data: bytes) -> None:
    p = tmp / f"f{ext}"
    p.write_bytes(data)
    load_outcome(p)


def load_outcome(p) -> str:
    """Load ``p`` within a 256 MiB budget: ``"ok"`` (a valid channel set) or ``"refused"`` (the clean
    error); anything else raises."""
    try:
        cs = load_channels(p, max_memory="256M")
    except MimofmInputError:
        return "refused"
    assert np.isfinite(cs.h.numpy()).all() and (np.abs(cs.h.numpy()).max(1) > 0).all()
    info = site_info(p)  # read in blocks: agrees with the whole read
    assert info["num_positions"] == cs.num_positions and info["num_bs_ant"] == cs.num_bs_ant
    return "ok"


@FUZZ
@given(st.sampled_from(sorted(BUILDERS)), st.integers(0, 2**32 - 1))
def test_importers_header_level_lies(tmp_path_factory, kind, seed):
    p = BUILDERS[kind](np.random.default_rng(seed), tmp_path_factory.mktemp("lie"))
    load_outcome(p)


def test_importers_mutated_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    corpus = _seed_files(tmp)

    @FUZZ
    @given(mutated(corpus))
    def run(case):
        _fuzz_load(tmp, *case)

    run()


@FUZZ
@given(st.sampled_from([".npz", ".npy", ".mat", ".h5", ".hdf5"]), st.binary(max_size=2048))
def test_importers_random_bytes(tmp_path_factory, ext, data):
    _fuzz_load(tmp_path_factory.mktemp("raw"), ext, data)


def test_site_file_attribute_and_dataset_tampering(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    src = bundled_dir() / "etoile-open.h5"

    @FUZZ
    @given(
        st.sampled_from(["H", "los", "positions", "split"]),
        st.sampled_from(["scale", "dtype", "drop", "attr"]),
        st.integers(0, 999),
    )
    def run(name, how, i):
        p = tmp / "s.h5"
        shutil.copy(src, p)
        with h5py.File(p, "r+") as f:
            if how == "scale" and name in f:
                ds = f[name]
                row = ds[i % ds.shape[0]]
                if ds.dtype.kind in "cf":
                    ds[i % ds.shape[0]] = row * 1.5 + 1
                elif ds.dtype.kind == "b":
                    ds[i % ds.shape[0]] = ~row
                else:  # split codes
                    ds[i % ds.shape[0]] = (row + 1) % 3
            elif how == "dtype" and name in f:
                data = f[name][...]
                del f[name]
                other = {"c": np.complex128, "f": np.float32, "b": np.int8, "i": np.int64}[data.dtype.kind]
                f[name] = data.astype(other)
            elif how == "drop" and name in f:
                del f[name]
            else:
                f.attrs["checksum_sha256"] = "0" * 64
        with pytest.raises(MimofmInputError):
            load_channels(p)

    run()


RECIPE_KEYS = ["recipe", "train", "fm", "steps", "lr", "sites", "model", "d_model", "seed", "bogus"]


@FUZZ
@given(
    st.recursive(
        st.one_of(
            st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12)
        ),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(RECIPE_KEYS), c, max_size=4),
        max_leaves=12,
    ),
    st.lists(st.text(max_size=20), max_size=3),
)
def test_recipe_files(tmp_path_factory, doc, overrides):
    import yaml

    p = tmp_path_factory.mktemp("r") / "r.yaml"
    p.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    with contextlib.suppress(MimofmInputError):
        load_recipe(p, overrides)


runner = CliRunner()
SITE = str(bundled_dir() / "florence-dense.h5")
TOKENS = [
    "eval",
    "data",
    "info",
    "sites",
    "--precoder",
    "zf,rzf",
    "mrt",
    "dpc",
    "--data",
    SITE,
    "missing.npz",
    "--snr-db",
    "10",
    "-5,abc",
    "nan",
    "--noise-dbm",
    "-90",
    "--num-ue",
    "0",
    "3",
    "70",
    "--samples",
    "2",
    "5",
    "-1",
    "--seed",
    "--json",
    "--positions",
    "test",
    "bogus",
    "--snr-convention",
    "none",
    "--help-me",
    "",
]


@settings(max_examples=max(10, CASES // 3), deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=10))
def test_cli_argument_parsing(argv):
    argv = [a for a in argv if a != "--json"]  # never write files from the fuzzer
    res = runner.invoke(app, argv)
    assert res.exit_code in (0, 1, 2), (argv, res.exit_code, res.output)
    assert "Traceback" not in res.output, argv
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"{argv}: {type(res.exception).__name__}: {res.exception}")
