"""`mimofm data info|import|export`: exit codes, outputs, clean errors."""

import json

import h5py
import numpy as np
import pytest
import scipy.io
import typer
from typer.testing import CliRunner

from mimofm.adaptation.common import fraction_split
from mimofm.channels.bundled import bundled_dir
from mimofm.channels.io import load_channels
from mimofm.channels.store import read_site
from mimofm.cli.data import data_app

# the sub-app mounted as in mimofm.cli.main (`app.add_typer(data_app, name="data")`)
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.add_typer(data_app, name="data")


@app.callback()
def _root() -> None:
    pass


runner = CliRunner()
SITE = bundled_dir() / "etoile-mixed.h5"


def _run(*args):
    return runner.invoke(app, ["data", *map(str, args)], catch_exceptions=False)


def _clean_error(res, match: str):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    text = " ".join(res.output.split())  # Rich wraps long lines
    assert "error:" in text and match in text


def test_import_info_export_roundtrip(tmp_path):
    out = tmp_path / "mixed.h5"
    res = _run("import", SITE, "--out", out, "--name", "mixed")
    assert res.exit_code == 0, res.output
    assert "imported" in res.output and out.exists()
    site = read_site(out)
    src = load_channels(SITE)
    assert site.name == "mixed" and np.array_equal(site.h.numpy(), src.h.numpy().astype(np.complex64))
    assert site.meta["imported_from"] == {"file": SITE.name, "format": "mimofm-site"}

    res = _run("info", out)
    assert res.exit_code == 0, res.output
    for text in ("mixed", "mimofm-site (schema 1)", str(src.num_positions), "LOS ratio", "median gain", "ok"):
        assert text in res.output

    res = _run("info", out, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["checksum_ok"] is True and info["num_bs_ant"] == src.num_bs_ant

    res = _run("export", out, "--out", tmp_path / "back.npz")
    assert res.exit_code == 0, res.output
    back = load_channels(tmp_path / "back.npz")
    assert back.name == "mixed" and np.array_equal(back.h.numpy(), site.h.numpy())
    assert np.array_equal(back.los.numpy(), site.los.numpy())


def test_info_on_import_sources(tmp_path):
    # [24] -> [6, 4]: 6 positions, 4 antennas
    h = (np.ones((6, 4)) + 1j * np.arange(24).reshape(6, 4)).astype(np.complex64)
    scipy.io.savemat(tmp_path / "h.mat", {"H": h})
    res = _run("info", tmp_path / "h.mat")
    assert res.exit_code == 0, res.output
    assert "mat-v5" in res.output and "not a site file" in res.output
    res = _run("import", tmp_path / "h.mat", "--out", tmp_path / "h.h5")
    assert res.exit_code == 0, res.output
    assert read_site(tmp_path / "h.h5").name == "h"


def test_import_writes_a_split_the_adaptation_would_make(tmp_path):
    # [200] -> [40, 5]: 40 positions, 5 antennas, no split
    h = (np.arange(200) + 1j).reshape(40, 5).astype(np.complex64)
    np.savez(tmp_path / "user.npz", H=h)
    res = _run(
        "import", tmp_path / "user.npz", "--out", tmp_path / "s.h5", "--split", "0.8", "--split-seed", "3"
    )
    assert res.exit_code == 0, res.output
    split = read_site(tmp_path / "s.h5").split.numpy()
    assert np.bincount(split, minlength=3).tolist() == [
        32,
        4,
        4,
    ] and "split train 32, val 4, test 4" in " ".join(res.output.split())
    np.testing.assert_array_equal(split, fraction_split(40, 0.8, 3))
    assert not np.array_equal(split, fraction_split(40, 0.8, 4))  # the seed matters
    # the default of `mimofm adapt` for a file without a split: 0.7 and its --seed
    assert _run("import", tmp_path / "user.npz", "--out", tmp_path / "t.h5", "--split", "0.7").exit_code == 0
    np.testing.assert_array_equal(read_site(tmp_path / "t.h5").split.numpy(), fraction_split(40, 0.7, 0))
    _clean_error(_run("import", tmp_path / "user.npz", "--out", tmp_path / "u.h5", "--split", "1"), "(0, 1)")


def test_info_reports_checksum_mismatch_and_exits_2(tmp_path):
    out = tmp_path / "s.h5"
    assert _run("import", SITE, "--out", out).exit_code == 0
    with h5py.File(out, "r+") as f:
        f.attrs["name"] = "tampered"
    res = _run("info", out)
    _clean_error(res, "checksum mismatch")
    assert "MISMATCH" in res.output
    _clean_error(_run("export", out, "--out", tmp_path / "x.npz"), "checksum mismatch")


@pytest.mark.parametrize(
    "args, match",
    [
        (("info", "{tmp}/nope.npz"), "does not exist"),
        (("info", "{tmp}/junk.h5"), "not an HDF5 file"),
        (("import", "{tmp}/junk.h5", "--out", "{tmp}/o.h5"), "not an HDF5 file"),
        (("import", str(SITE), "--out", "{tmp}/o.npz"), "must end in .h5 or .hdf5"),
        (("import", str(SITE), "--out", "{tmp}/exists.h5"), "already exists"),
        (("export", str(SITE), "--out", "{tmp}/o.h5"), "must end in .npz"),
        (("export", "{tmp}/cell.mat", "--out", "{tmp}/o.npz"), "cell array"),
    ],
)
def test_clean_errors(tmp_path, args, match):
    (tmp_path / "junk.h5").write_bytes(b"junk" * 64)
    (tmp_path / "exists.h5").write_bytes(b"")
    scipy.io.savemat(tmp_path / "cell.mat", {"H": np.array([np.ones(3), np.ones(2)], dtype=object)})
    res = _run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    _clean_error(res, match)
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.npz").exists()


def test_force_replaces(tmp_path):
    out = tmp_path / "s.h5"
    assert _run("import", SITE, "--out", out).exit_code == 0
    assert _run("import", SITE, "--out", out, "--name", "again", "--force").exit_code == 0
    assert read_site(out).name == "again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def test_out_symlink_needs_force_and_force_replaces_the_link_not_its_target(tmp_path):
    target = tmp_path / "precious.h5"
    target.write_bytes(b"keep me")
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    _clean_error(_run("import", SITE, "--out", link), "is a symlink; pass --force")
    dangling = tmp_path / "dangling.h5"
    dangling.symlink_to(tmp_path / "nowhere.h5")
    _clean_error(_run("import", SITE, "--out", dangling), "is a symlink")
    assert _run("import", SITE, "--out", link, "--force").exit_code == 0
    assert target.read_bytes() == b"keep me" and not link.is_symlink()
    assert read_site(link).num_positions == load_channels(SITE).num_positions


def test_import_refuses_a_hostile_file_cleanly(tmp_path):
    from tests.channels.hostile import hdf5_virtual

    res = _run("import", hdf5_virtual(tmp_path / "v.h5"), "--out", tmp_path / "o.h5")
    _clean_error(res, "is an HDF5 virtual dataset")
    assert not (tmp_path / "o.h5").exists()
    np.save(tmp_path / "h.npy", np.ones((50_000, 8), dtype=np.complex64))
    _clean_error(_run("info", tmp_path / "h.npy", "--max-memory", "1M"), "more than the memory budget")
    _clean_error(_run("info", tmp_path / "h.npy", "--max-memory", "lots"), "`--max-memory` must be a size")
