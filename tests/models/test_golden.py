"""Golden quality of every shipped fm/papp checkpoint on the bundled held-out sites (test positions).

Each value is the mean over the three held-out sites of the checkpoint's sum rate ÷ converged WMMSE's on a
fixed draw of 24 user sets per site (seed 0), pinned when the checkpoint was shipped (tolerance 1e-3:
float32 networks on another CPU). A regression in a checkpoint, the features, the structured precoder or
WMMSE moves it and fails here.
"""

from pathlib import Path

import pytest

from mimofm.channels.io import load_channels
from mimofm.evaluation.evaluate import EvalConfig, evaluate_sets
from mimofm.experiments._heldout import heldout_files
from mimofm.experiments.configurations import subarray_set

# (checkpoint, K, N_t, SNR dB) -> pinned mean ratio to WMMSE
GOLDEN: dict[tuple[str, int, int, float], float] = {
    ("fm", 4, 64, 10.0): 0.9948200719692538,
    ("fm", 8, 32, 20.0): 1.0017659226282802,
    ("fm", 2, 16, 0.0): 0.9962940465132902,
    ("fm", 16, 64, 30.0): 1.0273527675144412,
    ("papp", 4, 64, 10.0): 0.9850449939817721,
    ("papp", 8, 32, 20.0): 0.9714494127611916,
    ("papp", 2, 16, 0.0): 0.9992269375529723,
    # the networks followed by WMMSE updates (mimofm.models.zoo.polished): pinned with the same checkpoints
    ("papp+wmmse-1", 16, 64, 10.0): 0.9385969039159309,
    ("papp+wmmse-2", 8, 32, 20.0): 0.9810999169721247,
    ("fm+wmmse-1", 4, 64, 0.0): 0.9922090144634462,
    ("papp-lite", 4, 64, 10.0): 0.9555892566496064,
    ("papp-csi", 4, 64, 10.0): 0.9596170166206681,
    ("papp-hbf", 4, 64, 10.0): 0.9505595410447212,
}


def _ratio(name: str, k: int, n: int, snr_db: float) -> float:
    sets = [subarray_set(load_channels(Path(p)), n) for p in heldout_files().values()]
    cfg = EvalConfig(precoders=[name, "wmmse"], snr_db=[snr_db], num_ue=k, samples=24, positions="test")
    rows = [r for r in evaluate_sets(sets, cfg)["results"] if r["precoder"] == name]
    return sum(r["ratio_to_wmmse"] for r in rows) / len(rows)


@pytest.mark.parametrize(("name", "k", "n", "snr_db"), list(GOLDEN))
def test_shipped_checkpoint_holds_its_held_out_quality(name, k, n, snr_db):
    assert _ratio(name, k, n, snr_db) == pytest.approx(GOLDEN[(name, k, n, snr_db)], abs=1e-3)
