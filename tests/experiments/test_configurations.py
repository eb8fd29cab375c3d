"""The configuration study runs one fm and one papp checkpoint over several (K, N_t) on held-out data."""

import torch

from mimofm.channels.io import load_channels
from mimofm.experiments._heldout import heldout_files
from mimofm.experiments.configurations import (
    ConfigSpec,
    render,
    run_configurations,
    subarray_set,
    summary_rows,
)
from mimofm.models.fm import FMConfig, FMPrecoder
from mimofm.models.papp import PaPP, PaPPConfig
from mimofm.training.checkpoint import save_checkpoint


def _tiny_checkpoints(tmp_path) -> dict[str, str]:
    torch.manual_seed(0)
    fm_cfg = FMConfig(input_form="user", d_model=16, num_layers=1, ffn=32, dropout=0.0)
    papp_cfg = PaPPConfig(
        input_form="user", cnn_channels=[2], encoder_layers=2, encoder_width=16, feature_dim=8,
        teacher_width=16, student_widths=[16],
    )  # fmt: skip
    out = {}
    for name, model, cfg in (("fm", FMPrecoder(fm_cfg), fm_cfg), ("papp", PaPP(papp_cfg), papp_cfg)):
        stem = tmp_path / name
        save_checkpoint(stem, model, config={"recipe_name": name}, meta={"architecture": cfg.to_dict()})
        out[name] = str(stem)
    return out


def test_subarrays_take_the_first_antennas():
    cs = load_channels(heldout_files()["etoile-open"])
    sub = subarray_set(cs, 16)
    assert sub.num_bs_ant == 16 and sub.name == "etoile-open[16]"
    torch.testing.assert_close(sub.h, cs.h[:, :16])
    assert subarray_set(cs, cs.num_bs_ant) is cs


def test_one_checkpoint_each_serves_every_configuration_and_the_table_reads_the_ratios(tmp_path):
    spec = ConfigSpec(site_points=((2, 16), (8, 32)), snrs_db=(10.0,), samples=8)
    doc = run_configurations(spec, checkpoints=_tiny_checkpoints(tmp_path))
    configs = {(r["num_ue"], r["num_bs_ant"]) for r in doc["rows"]}
    assert configs == {(2, 16), (8, 32)}
    assert {r["precoder"] for r in doc["rows"]} == {
        "fm", "fm+wmmse-1", "papp", "papp+wmmse-1", "papp+wmmse-2", "wmmse-3", "zf-wf", "rzf", "wmmse",
    }  # fmt: skip
    # the WMMSE updates after a network never lose rate, and start no lower than ZF-WF
    rate = {(r["precoder"], r["site"], r["num_ue"]): r["sum_rate_mean"] for r in doc["rows"]}
    for (p, site, k), v in rate.items():
        if "+wmmse" in p:
            base = p.split("+")[0]
            assert v >= rate[(base, site, k)] - 1e-9 and v >= rate[("zf-wf", site, k)] - 1e-9
    header, rows = summary_rows(doc, "fm")
    assert header[:3] == ["data", "K", "N_t"] and len(rows) == 2
    # the table's cell is the mean over the three held-out sites of the rows' ratio to WMMSE
    fm_2_16 = [r["ratio_to_wmmse"] for r in doc["rows"] if r["precoder"] == "fm" and r["num_ue"] == 2]
    assert len(fm_2_16) == 3
    assert rows[0][3] == f"{sum(fm_2_16) / 3:.3f}"
    assert "#### fm: sum rate ÷ WMMSE" in render(doc)
