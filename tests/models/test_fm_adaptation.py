import json

import numpy as np
import pytest
import torch

from mimofm.adaptation.common import fraction_split, local_dataset, site_split
from mimofm.adaptation.fm import (
    HeadAdaptation,
    adapt_fm,
    head_dataset_names,
    head_weights,
    local_feature,
    similar_datasets,
    similar_heads,
)
from mimofm.adaptation.papp import finetune_papp
from mimofm.channels.io import load_channels
from mimofm.core.linkbudget import median_gain
from mimofm.core.validation import MimofmInputError
from mimofm.models.fm import FMConfig, FMPrecoder
from mimofm.models.papp import PaPP, PaPPConfig
from mimofm.models.zoo import load_fm
from mimofm.training.checkpoint import save_checkpoint
from mimofm.training.fm_recipe import load_datasets
from mimofm.training.trainer import TrainConfig, train
from tests.models.toys import FM_TINY, tiny_fm_recipe, tiny_user_fm, toy_site, user_file


@pytest.fixture(scope="module")
def user_fm(tmp_path_factory) -> str:
    """A tiny user-form fm pretrained for a few steps (dataset heads a/los, a/nlos, b/los, b/nlos)."""
    return tiny_user_fm(tmp_path_factory.mktemp("user-fm"))


def _shots(path, n_shots: int = 8):
    """The first ``n_shots`` positions of a user file as a local dataset (site-median SNR of the file)."""
    cs = load_channels(user_file(path, 5))
    return local_dataset(cs.h[:n_shots], "local/8-shot", median_gain(cs.h))


def test_similarity_finds_the_same_site_and_head_adaptation_improves(tmp_path):
    sites = [toy_site(tmp_path / "a.h5", 1, rank=3), toy_site(tmp_path / "b.h5", 2, rank=1)]
    rec = tiny_fm_recipe(sites, pretrain_steps=30, default_batch=32, rmax_samples=8)
    train(rec, TrainConfig(steps=30, lr=3e-3, ckpt_every=30, out_dir=str(tmp_path / "pre")), progress=False)
    ckpt = str(tmp_path / "pre" / "last")
    model = load_fm(ckpt)
    training = load_datasets(sites, 4)
    local = local_dataset(training[0].h[:40], "copy-of-a-los")  # a "new" site that is dataset 0
    top = similar_datasets(model, training, local, shots=10, top_n=2, snr_db=10.0)
    assert top[0][0] in (0, 1) and top[0][1] > 0.9  # a dataset of site a (its LOS or NLOS users)
    ad = HeadAdaptation(
        checkpoint=ckpt, datasets=[training[i] for i, _ in top] + [local], snr_grid_db=[10.0], batch_size=32
    )
    torch.manual_seed(0)
    before = ad.evaluate(ad.build_model())["objective"]
    out = train(
        ad, TrainConfig(steps=40, lr=3e-3, ckpt_every=40, out_dir=str(tmp_path / "ad")), progress=False
    )
    assert out["metrics"]["objective"] >= before
    frozen = load_fm(ckpt).extractor.state_dict()
    for k, v in out["model"].extractor.state_dict().items():
        assert torch.equal(v, frozen[k]), k  # the extractor is untouched


def test_head_weights_are_normalized_cosines():
    assert head_weights([0.6, 0.2, -0.1]) == pytest.approx([0.75, 0.25, 0.0])
    assert head_weights([-0.5, -0.1]) == [0.5, 0.5]  # no positive cosine: equal weights
    assert head_weights([0.9]) == [1.0]  # top_n = 1 copies the most similar head


def test_few_shot_head_starts_from_the_weighted_average_of_the_most_similar_heads(user_fm, tmp_path):
    model = load_fm(user_fm)
    assert head_dataset_names(user_fm, 4) == ["a/los", "a/nlos", "b/los", "b/nlos"]
    assert head_dataset_names(user_fm, 5) is None  # a count the card does not explain: indices only
    local = _shots(tmp_path / "local.npz")
    psi = local_feature(model, local, 2, [10.0])
    top = similar_heads(model, psi, top_n=2)
    # the two largest cosines between ψ_d and the recorded ψ_e of the dataset heads, best first
    cos = torch.nn.functional.cosine_similarity(model.head_features[:-1].double(), psi.double()[None], dim=-1)
    best = torch.argsort(cos, descending=True)[:2].tolist()
    assert [i for i, _ in top] == best
    assert [c for _, c in top] == pytest.approx(cos[best].tolist())
    weights = head_weights([c for _, c in top])
    rec = HeadAdaptation(
        checkpoint=user_fm,
        datasets=[local],
        num_ue=2,
        head_init=[[i, w] for (i, _), w in zip(top, weights)],
        psi=psi.tolist(),
        snr_grid_db=[10.0],
        batch_size=32,
    )
    m = rec.build_model()
    heads = [model.heads[i].state_dict() for i, _ in top]
    for name, p in m.heads[m.default_head].state_dict().items():
        expect = weights[0] * heads[0][name] + weights[1] * heads[1][name]
        torch.testing.assert_close(p, expect, rtol=1e-6, atol=1e-7)
    assert not torch.equal(heads[0]["w_out.weight"], heads[1]["w_out.weight"])  # an average of two heads
    torch.testing.assert_close(m.head_features[-1], psi.float())  # ψ_d is the new head's feature
    torch.testing.assert_close(m.head_features[:-1], model.head_features[:-1])
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {f"heads.{m.default_head}.{n}" for n, _ in m.heads[m.default_head].named_parameters()}


def test_head_adaptation_trains_fms_objective_and_does_not_lower_it(user_fm, tmp_path):
    local = _shots(tmp_path / "local.npz")
    rec = HeadAdaptation(checkpoint=user_fm, datasets=[local], num_ue=2, snr_grid_db=[10.0], batch_size=32)
    b = rec.batch(0)
    assert b["h"].shape == (32, 2, 16)
    big = b["requests"][:, 0] >= 1e3
    assert int(big.sum()) == 8  # a quarter keeps maximum-rate requests
    # the others sum to β·R^max, R^max WMMSE's (10 iterations) mean sum rate on the shots at 10 dB
    assert b["r_max"] == pytest.approx(float(rec.rmax()[0, 0]))
    assert bool((b["requests"][~big].sum(-1) <= b["r_max"] + 1e-4).all())
    torch.manual_seed(0)
    before = rec.evaluate(rec.build_model())
    out = train(
        rec, TrainConfig(steps=15, lr=3e-3, ckpt_every=15, out_dir=str(tmp_path / "ad")), progress=False
    )
    after = out["metrics"]
    assert after["objective"] >= before["objective"]
    assert set(after) >= {"energy_ratio", "rel_rate_error", "ratio_to_rmax"}
    base = load_fm(user_fm)
    for k, v in out["model"].state_dict().items():
        if not k.startswith(f"heads.{base.default_head}.") and k != "head_features":
            assert torch.equal(v, base.state_dict()[k]), k  # only the default head changed


def test_adapting_a_file_without_split_makes_records_and_reuses_one(user_fm, tmp_path):
    cs = load_channels(user_file(tmp_path / "local.npz", 5))
    assert cs.split is None
    d, logs = tmp_path / "run", []
    kw = dict(checkpoint=user_fm, num_ue=2, top_n=2, steps=3, snr_grid_db=[10.0], eval_samples=16)
    out = adapt_fm(cs, 8, out_dir=str(d), progress=False, log=logs.append, **kw)
    codes = np.load(d / "split.npy")
    np.testing.assert_array_equal(codes, fraction_split(cs.num_positions, 0.7, 0))
    assert sum("has no position split: made one" in line for line in logs) == 1
    doc = json.loads((d / "adaptation.json").read_text())
    assert doc["split"]["source"] == "made" and doc["split"]["counts"]["test"] == int((codes == 2).sum())
    assert doc["held_out"]["positions"] == "test" and doc["held_out"]["num_positions"] == (codes == 2).sum()
    assert doc["num_ue"] == 2 and doc["num_bs_ant"] == 16
    assert [i for i, _ in doc["head_init"]] == [i for i, _ in out["head_init"]] and len(doc["head_init"]) == 2
    assert sum(w for _, w in doc["head_init"]) == pytest.approx(1.0)
    for row in ("zero-shot", "adapted"):
        r = doc["report"][row]
        assert 0.5 < r["ratio_to_wmmse"] <= 1.01 and 0 < r["energy_ratio"] <= 1
        assert r == out["report"][row]
    # a second run in the same folder reuses the recorded split (and resumes the finished run)
    logs.clear()
    again = adapt_fm(cs, 8, out_dir=str(d), progress=False, log=logs.append, **kw)
    assert sum(f"reusing {d / 'split.npy'}" in line for line in logs) == 1
    assert again["split"]["source"] == "reused" and again["report"]["adapted"] == out["report"]["adapted"]
    # what is reused is the file, not a recomputation
    other = fraction_split(cs.num_positions, 0.5, 9)
    (tmp_path / "other").mkdir()
    np.save(tmp_path / "other" / "split.npy", other)
    np.testing.assert_array_equal(site_split(cs, tmp_path / "other", seed=0, log=logs.append).codes, other)
    np.save(tmp_path / "other" / "split.npy", other[:-1])
    with pytest.raises(MimofmInputError, match="is not a split of local"):
        site_split(cs, tmp_path / "other", log=logs.append)


def test_fixed_configuration_checkpoints_refuse_another_configuration_before_any_work(tmp_path):
    cfg = FMConfig(num_bs_ant=16, num_output_heads=2, **FM_TINY)
    save_checkpoint(
        tmp_path / "fm", FMPrecoder(cfg), config={"recipe_name": "fm"}, meta={"architecture": cfg.to_dict()}
    )
    pcfg = PaPPConfig(num_bs_ant=16, num_ue=4, cnn_channels=[4, 2], encoder_layers=1, encoder_width=16)
    pcfg.feature_dim, pcfg.teacher_width, pcfg.student_widths = 8, 16, [16, 16]
    save_checkpoint(
        tmp_path / "papp", PaPP(pcfg), config={"recipe_name": "papp"}, meta={"architecture": pcfg.to_dict()}
    )
    wide = load_channels(user_file(tmp_path / "wide.npz", 3, ant=16))
    narrow = load_channels(user_file(tmp_path / "narrow.npz", 3, ant=8))
    for fn, stem in ((adapt_fm, "fm"), (finetune_papp, "papp")):
        for cs, k in ((wide, 2), (narrow, 4)):
            d = tmp_path / f"run-{stem}-{k}"
            with pytest.raises(
                MimofmInputError,
                match=f"this {stem} checkpoint is a fixed-configuration \\(antenna-form\\) checkpoint for 4 "
                "users × 16 antennas",
            ):
                fn(cs, 8, checkpoint=str(tmp_path / stem), num_ue=k, out_dir=str(d), progress=False)
            assert not d.exists()  # refused before the split or anything else was written
