import pytest
import torch

from mimofm.channels.bundled import bundled_sites
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.models.zoo import NEURAL, build_precoder, build_precoders, precoder_catalog
from mimofm.precoders.linear import zf
from mimofm.precoders.registry import (
    CLASSICAL,
    PrecoderOutput,
    PrecoderSpec,
    get_precoder,
    register_precoder,
    run_precoder,
)


def _half_zf(h: torch.Tensor) -> PrecoderOutput:
    """ZF at a quarter of the power (W / 2): a plug-in whose rate is known to be below ZF's."""
    w = zf(h) / 2
    return PrecoderOutput(w=w, sum_rate=torch.zeros(h.shape[:-2], dtype=torch.float64))


def test_classical_table_is_read_only_and_plugins_extend_a_copy():
    with pytest.raises(TypeError):
        CLASSICAL["x"] = CLASSICAL["zf"]  # type: ignore[index]
    spec = PrecoderSpec("zf-half", "precoder", _half_zf, "ZF at a quarter of the power")
    table = register_precoder(CLASSICAL, spec)
    assert "zf-half" in table and "zf-half" not in CLASSICAL and list(table)[:-1] == list(CLASSICAL)
    with pytest.raises(MimofmInputError, match="already"):
        register_precoder(table, spec)
    with pytest.raises(MimofmInputError, match="unknown precoder 'zf-half'"):
        get_precoder("zf-half")
    h = torch.randn(2, 3, 8, dtype=torch.complex128)
    assert torch.allclose(run_precoder("zf-half", h, table).w, run_precoder("zf", h).w / 2)
    # a plug-in table is passed to the evaluation explicitly; the plug-in loses to ZF at 1/4 power
    cs = bundled_sites()[0]
    cfg = EvalConfig(precoders=["zf", "zf-half"], snr_db=[10.0], samples=16, positions="test")
    rates = {r["precoder"]: r["sum_rate_mean"] for r in evaluate_sets([cs], cfg, table=table)["results"]}
    assert 0 < rates["zf-half"] < rates["zf"]
    with pytest.raises(MimofmInputError, match="unknown precoder 'zf-half'"):
        evaluate_sets([cs], cfg)


def test_zoo_lists_every_name_once_and_builds_neural_precoders_from_checkpoints():
    catalog = precoder_catalog()
    assert list(catalog) == [*CLASSICAL, *NEURAL]
    assert catalog["dpc"][0] == "bound" and catalog["fm"][0] == "precoder"
    assert build_precoder("zf") is CLASSICAL["zf"]
    with pytest.raises(MimofmInputError, match="takes no checkpoint"):
        build_precoder("zf", checkpoint="x")
    with pytest.raises(MimofmInputError, match="unknown precoder 'magic'"):
        build_precoders(["zf", "magic"])
    hbf, hbf4 = build_precoders(["papp-hbf", "papp-hbf-4"])
    # [8, N] positions -> [2, 4, N]: two samples of four users
    h = bundled_sites()[0].h[:8].reshape(2, 4, -1).to(torch.complex64) * 1e5
    w8, w4 = hbf.run(h).w, hbf4.run(h).w
    assert w8.shape == w4.shape == (2, h.shape[-1], 4) and not torch.allclose(w8, w4)
