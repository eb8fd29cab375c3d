from mimofm.channels.bundled import bundled_sites
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets, evaluate_variants
from mimofm.precoders.registry import _CHECKPOINTS


def test_variants_are_paired_with_the_plain_evaluation_and_restore_the_shipped_checkpoint():
    cs = bundled_sites()[0]
    cfg = EvalConfig(precoders=["zf", "papp"], snr_db=[10.0], samples=16, positions="test")
    plain = {r["precoder"]: r["sum_rate_mean"] for r in evaluate_sets([cs], cfg)["results"]}
    rows = evaluate_variants(cs, "papp", {"zero": None, "again": None}, cfg)
    assert [r["precoder"] for r in rows] == ["papp-zero", "papp-again"]
    assert all(r["sum_rate_mean"] == plain["papp"] for r in rows)  # same samples, same model
    assert _CHECKPOINTS["papp"] is None


def test_compare_checkpoints_puts_classical_and_variants_on_the_same_samples():
    from mimofm.evaluation.evaluate import compare_checkpoints

    cs = bundled_sites()[0]
    cfg = EvalConfig(precoders=["zf"], snr_db=[10.0], samples=16, positions="test")
    doc = compare_checkpoints([cs], ["zf", "wmmse"], "papp", {"zero": {cs.name: None}}, cfg)
    assert [r["precoder"] for r in doc["results"]] == ["zf", "wmmse", "papp-zero"]
    plain = evaluate_sets([cs], EvalConfig(precoders=["papp"], snr_db=[10.0], samples=16, positions="test"))
    assert doc["results"][2]["sum_rate_mean"] == plain["results"][0]["sum_rate_mean"]
    assert doc["config"] == {"snr_db": [10.0], "samples": 16, "positions": "test"}
