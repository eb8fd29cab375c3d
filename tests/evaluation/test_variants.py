import pytest

from mimofm.channels.bundled import bundled_sites
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.evaluate import EvalConfig, assign_checkpoint, evaluate_sets, evaluate_variants
from mimofm.models.zoo import shipped_checkpoint


def _means(doc: dict) -> dict[str, float]:
    return {r["precoder"]: r["sum_rate_mean"] for r in doc["results"]}


def test_variants_are_paired_with_the_plain_evaluation_and_leave_the_config_alone():
    cs = bundled_sites()[0]
    cfg = EvalConfig(precoders=["zf", "papp", "papp-csi"], snr_db=[10.0], samples=16, positions="test")
    plain = _means(evaluate_sets([cs], cfg))
    assert plain["papp"] != plain["papp-csi"]  # two different checkpoints, two different rates
    csi = str(shipped_checkpoint("papp-csi"))
    rows = evaluate_variants(cs, "papp", {"zero": None, "csi": csi, "again": None}, cfg)
    got = {r["precoder"]: r["sum_rate_mean"] for r in rows}
    assert list(got) == ["papp-zero", "papp-csi", "papp-again"]
    # same samples: the shipped papp as in the plain run, and the papp-csi weights served under "papp"
    assert got["papp-zero"] == got["papp-again"] == plain["papp"]
    assert got["papp-csi"] == plain["papp-csi"]
    # nothing is left behind: the config is unchanged and a plain run after the variants is the same
    assert cfg.checkpoints == {} and cfg.precoders == ["zf", "papp", "papp-csi"]
    assert _means(evaluate_sets([cs], cfg)) == plain


def test_a_checkpoint_is_carried_by_the_config():
    cs = bundled_sites()[0]
    base = EvalConfig(precoders=["papp", "papp-refined"], snr_db=[10.0], samples=16, positions="test")
    cfg = assign_checkpoint(base, str(shipped_checkpoint("papp-csi")))
    assert cfg.checkpoints == {"papp": str(shipped_checkpoint("papp-csi"))} and base.checkpoints == {}
    doc = evaluate_sets([cs], cfg)
    assert doc["config"]["checkpoints"] == cfg.checkpoints  # recorded in the result
    csi = _means(
        evaluate_sets([cs], EvalConfig(precoders=["papp-csi"], snr_db=[10.0], samples=16, positions="test"))
    )
    assert _means(doc)["papp"] == csi["papp-csi"]
    with pytest.raises(MimofmInputError, match="exactly one neural precoder"):
        assign_checkpoint(EvalConfig(precoders=["fm", "papp"]), "x")
    with pytest.raises(MimofmInputError, match="applies to"):
        evaluate_variants(cs, "papp-refined", {"a": None}, base)


def test_compare_checkpoints_puts_classical_and_variants_on_the_same_samples():
    from mimofm.evaluation.evaluate import compare_checkpoints

    cs = bundled_sites()[0]
    cfg = EvalConfig(precoders=["zf"], snr_db=[10.0], samples=16, positions="test")
    doc = compare_checkpoints([cs], ["zf", "wmmse"], "papp", {"zero": {cs.name: None}}, cfg)
    assert [r["precoder"] for r in doc["results"]] == ["zf", "wmmse", "papp-zero"]
    plain = evaluate_sets([cs], EvalConfig(precoders=["papp"], snr_db=[10.0], samples=16, positions="test"))
    assert doc["results"][2]["sum_rate_mean"] == plain["results"][0]["sum_rate_mean"]
    assert doc["config"] == {"snr_db": [10.0], "samples": 16, "positions": "test"}
