import torch

from mimofm.adaptation.common import local_dataset
from mimofm.adaptation.fm import HeadAdaptation, similar_datasets
from mimofm.models.zoo import load_fm
from mimofm.training.fm_recipe import load_datasets
from mimofm.training.trainer import TrainConfig, train
from tests.models.toys import tiny_fm_recipe, toy_site


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
    before = ad.evaluate(ad.build_model())["ratio_to_rzf"]
    out = train(
        ad, TrainConfig(steps=40, lr=3e-3, ckpt_every=40, out_dir=str(tmp_path / "ad")), progress=False
    )
    assert out["metrics"]["ratio_to_rzf"] >= before
    frozen = load_fm(ckpt).extractor.state_dict()
    for k, v in out["model"].extractor.state_dict().items():
        assert torch.equal(v, frozen[k]), k  # the extractor is untouched
