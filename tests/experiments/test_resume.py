"""A benchmark's jobs run once: a second invocation reloads every finished step instead of re-training."""

from mimofm.experiments import wifoe_paper


def test_wifoe_jobs_of_a_shard_train_once_and_a_changed_budget_trains_again(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(
        wifoe_paper,
        "jobs",
        lambda ckpt, steps, spec: [(f"stl/T{i}", {"tasks": [f"T{i}"]}, {"steps": steps}) for i in (1, 2, 3)],
    )
    monkeypatch.setattr(wifoe_paper, "train", lambda rec, cfg, progress: trained.append(cfg.out_dir))
    monkeypatch.setattr(wifoe_paper, "WiFoERecipe", lambda **kw: kw)
    assert wifoe_paper.train_shard(tmp_path, "ckpt", 10, "0/2") == 2  # jobs 0 and 2 of 3
    assert [p.rsplit("/", 2)[-2:] for p in trained] == [["stl", "T1"], ["stl", "T3"]]
    wifoe_paper.train_shard(tmp_path, "ckpt", 10, "0/2")
    wifoe_paper.train_shard(tmp_path, "ckpt", 10, "1/2")
    assert len(trained) == 3  # the first shard's jobs were not trained again
    wifoe_paper.train_shard(tmp_path, "ckpt", 20, "1/2")  # other steps: another result
    assert len(trained) == 4
