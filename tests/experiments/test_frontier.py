"""The rate-vs-latency frontier: dominance is read right, and the study runs end to end."""

from mimofm.experiments.frontier import FrontierSpec, frontier_points, plot, render, run_frontier


def _doc(points):
    rows = [
        {"snr_db": 10.0, "kind": "precoder", "precoder": n, "seconds_per_precoder": t, "ratio_to_wmmse": r}
        for n, t, r in points
    ]
    return {"rows": rows, "spec": {"num_ue": 4, "num_bs_ant": 64, "samples": 8, "chunk": 8}, "threads": 1}


def test_a_point_is_on_the_frontier_unless_another_is_as_fast_and_as_good():
    doc = _doc(
        [
            ("zf-wf", 1e-6, 0.90),
            ("fm", 5e-6, 0.95),
            ("wmmse-1", 4e-6, 0.97),  # faster and better than fm: fm is dominated
            ("wmmse", 1e-4, 1.0),
            ("rzf", 2e-6, 0.89),  # slower and worse than zf-wf
        ]
    )
    pts = {p["precoder"]: p for p in frontier_points(doc, 10.0)}
    assert [n for n, p in pts.items() if p["on_frontier"]] == ["zf-wf", "wmmse-1", "wmmse"]
    assert pts["fm"]["neural"] and not pts["wmmse-1"]["neural"]
    assert "10 dB: no neural precoder on the frontier" in render(doc)


def test_the_study_times_and_rates_every_contender_in_one_run(tmp_path):
    spec = FrontierSpec(snrs_db=(10.0,), samples=8, chunk=8, precoders=("zf-wf", "rzf", "wmmse-1", "wmmse"))
    doc = run_frontier(spec)
    pts = frontier_points(doc, 10.0)
    assert {p["precoder"] for p in pts} == {"zf-wf", "rzf", "wmmse-1", "wmmse"}
    assert all(p["seconds"] > 0 for p in pts)
    assert next(p for p in pts if p["precoder"] == "wmmse")["ratio"] == 1.0
    assert plot(doc, tmp_path / "f.png").stat().st_size > 1000


def test_fixed_configuration_checkpoints_are_read_from_their_cards_not_loaded():
    """What a neural name serves, read from its checkpoint card, is what its built precoder reports."""
    from mimofm.models.zoo import NEURAL, build_precoder, neural_serves

    assert neural_serves("papp-lite") == (4, 64)
    assert neural_serves("papp") is None and neural_serves("fm+wmmse-1") is None
    for name in ("fm", "papp+wmmse-2", "papp-lite", "papp-hbf-4"):
        assert neural_serves(name) == build_precoder(name).serves, name
    assert set(NEURAL) >= {"papp+wmmse-1", "papp+wmmse-2", "fm+wmmse-1"}
