"""`mimofm data import|info` and `mimofm eval --data` on files users hold: the read-as line, the import
options, and error messages that keep their brackets (Rich markup is escaped) with exit code 2."""

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mimofm.channels.store import read_site
from mimofm.cli.main import app

DATA = Path(__file__).resolve().parents[1] / "channels" / "data"
runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _text(res) -> str:
    return " ".join(res.output.split())  # Rich wraps long lines


def test_import_deepmimo_prints_how_it_was_read_and_records_it(tmp_path):
    out = tmp_path / "dm.h5"
    res = _run("data", "import", DATA / "deepmimo_v4.npz", "--out", out, "--subcarrier", "2")
    assert res.exit_code == 0, res.output
    line = (
        "read 'channel' [24, 1, 16, 8] as DeepMIMO v4 [users, rx, tx, subcarriers]: "
        "subcarrier 2 of 8 -> [24, 16]"
    )
    assert line in _text(res)
    site = read_site(out)
    with np.load(DATA / "deepmimo_v4.npz") as z:
        want = z["channel"][:, 0, :, 2]
    np.testing.assert_array_equal(site.h.numpy(), want)
    assert site.meta["imported_from"]["options"] == {"subcarrier": 2}
    assert site.meta["imported_from"]["read_as"].startswith("read 'channel' [24, 1, 16, 8]")
    res = _run("data", "info", DATA / "sionna_umi_ofdm.h5", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["num_positions"] == 12 and "subcarrier mean over 12" in info["read_as"]


def test_eval_reads_a_sionna_file_with_the_options_and_records_them(tmp_path):
    out = tmp_path / "r.json"
    res = _run(
        "eval", "--data", DATA / "sionna_umi_ofdm.h5", "--subcarrier", "6", "--precoder", "mrt",
        "--snr-db", "10", "--samples", "4", "--num-ue", "2", "--json", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "subcarrier 6 of 12" in _text(res)
    result = json.loads(out.read_text())
    (read,) = result["data_read_as"]
    assert (
        read["var"] == "h_freq" and read["shape"] == [12, 16] and read["file"].endswith("sionna_umi_ofdm.h5")
    )
    assert read["layout"] == "n,n,nrx,1,ntx,t,sc"


def test_errors_keep_their_brackets_and_exit_2(tmp_path):
    np.save(tmp_path / "t.npy", (np.ones((64, 1000)) + 1j).astype(np.complex64))
    res = _run("data", "import", tmp_path / "t.npy", "--out", tmp_path / "t.h5")
    assert res.exit_code == 2 and "Traceback" not in res.output
    text = _text(res)
    assert "looks transposed: 64 rows × 1000 columns" in text
    assert "(H is [num_positions, num_bs_ant])" in text and "--layout ntx,n" in text
    assert not (tmp_path / "t.h5").exists()

    res = _run("eval", "--data", tmp_path / "t.npy", "--snr-db", "10", "--samples", "4")
    assert res.exit_code == 2 and "[num_positions, num_bs_ant]" in _text(res)

    np.save(tmp_path / "v.npy", np.ones(4, dtype=np.complex64))
    res = _run("data", "info", tmp_path / "v.npy")
    assert res.exit_code == 2 and "must have shape [num_positions, num_bs_ant], got [4]" in _text(res)

    odd = tmp_path / "[bold]site[/bold].npz"  # markup in a file name stays as typed
    res = _run("data", "info", odd)
    assert res.exit_code == 2 and "[bold]site[/bold].npz' does not exist" in _text(res)


def test_tiny_gains_and_options_without_data_are_clean_errors(tmp_path):
    np.save(tmp_path / "tiny.npy", (np.ones((40, 16)) * 1e-17 + 0j).astype(np.complex64))
    res = _run("eval", "--data", tmp_path / "tiny.npy", "--snr-db", "10", "--samples", "4")
    assert res.exit_code == 2
    text = _text(res)
    assert "below -300 dB" in text and "--snr-db" in text and "--noise-dbm" in text
    res = _run("eval", "--precoder", "wifoe", "--task", "T1", "--layout", "n,ntx")
    assert res.exit_code == 2 and "say how to read --data files" in _text(res)
