"""Same seed -> same samples, same training curve, same evaluation numbers (CPU)."""

import json

import numpy as np

from mimofm.channels.bundled import bundled_sites
from mimofm.channels.sampling import draw_user_sets
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.training.toy import ToyRecipe
from mimofm.training.trainer import TrainConfig, train


def test_same_seed_same_samples():
    assert np.array_equal(draw_user_sets(1000, 4, 64, seed=7), draw_user_sets(1000, 4, 64, seed=7))


def test_same_seed_same_evaluation_numbers():
    sets = bundled_sites()[:1]
    cfg = EvalConfig(precoders=["zf", "rzf", "wmmse", "dpc"], snr_db=[0.0, 20.0], samples=40, seed=3)
    a, b = evaluate_sets(sets, cfg), evaluate_sets(sets, cfg)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds_per_precoder"} for r in rows]  # noqa: E731
    assert strip(a["results"]) == strip(b["results"])
    c = evaluate_sets(sets, EvalConfig(precoders=["zf"], snr_db=[0.0], samples=40, seed=4))
    assert c["results"][0]["sum_rate_mean"] != a["results"][0]["sum_rate_mean"]


def test_same_seed_same_training_curve(tmp_path):
    curves = []
    for run in ("a", "b"):
        train(
            ToyRecipe(),
            TrainConfig(steps=30, lr=3e-3, log_every=5, ckpt_every=30, out_dir=str(tmp_path / run)),
            progress=False,
        )
        log = [json.loads(x) for x in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        curves.append([(r["step"], r.get("loss"), json.dumps(r.get("eval"))) for r in log])
    assert curves[0] == curves[1]
