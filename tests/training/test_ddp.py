"""Two CPU processes (gloo) train the toy recipe in data parallel and stay identical."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mimofm.training.toy import ToyRecipe
from mimofm.training.trainer import TrainConfig, train


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    res = train(
        ToyRecipe(), TrainConfig(steps=6, lr=1e-2, ckpt_every=3, log_every=1, out_dir=out), progress=False
    )
    torch.save(res["model"].state_dict(), os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_data_parallel_training_stays_in_sync(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the ranks really trained (on different batches, averaged), and rank 0 alone wrote the checkpoint
    init = ToyRecipe()
    torch.manual_seed(0)
    start = init.build_model().state_dict()
    assert any(not torch.equal(a[k], start[k]) for k in a)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert sum('"loss"' in ln for ln in lines) == 6  # one writer: 6 logged steps, not 12
