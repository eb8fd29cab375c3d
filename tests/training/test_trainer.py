import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mimofm.core.validation import MimofmInputError
from mimofm.models.checkpoint import load_weights, sha256_file
from mimofm.training.checkpoint import load_checkpoint, save_checkpoint
from mimofm.training.toy import ToyPrecoder, ToyRecipe
from mimofm.training.trainer import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]


def test_trained_toy_beats_untrained(tmp_path):
    rec = ToyRecipe()
    torch.manual_seed(0)
    before = rec.evaluate(rec.build_model())["sum_rate"]
    out = train(rec, TrainConfig(steps=300, lr=1e-2, ckpt_every=300, out_dir=str(tmp_path)), progress=False)
    assert out["metrics"]["sum_rate"] > before + 0.1
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 300 and "eval" in log[-1]


def test_tensorboard_events_mirror_the_log(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(
        ToyRecipe(), TrainConfig(steps=30, log_every=10, ckpt_every=30, out_dir=str(tmp_path)), progress=False
    )
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert [e.step for e in loss] == [r["step"] for r in log]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in log], rel=1e-6)
    assert "eval/sum_rate" in acc.Tags()["scalars"]


@dataclass
class _Crashing(ToyRecipe):
    crash_at: int = -1

    def config(self) -> dict:  # the crash switch is not part of the training config
        return {k: v for k, v in super().config().items() if k != "crash_at"}

    def loss(self, model, batch, step):
        if step == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        return super().loss(model, batch, step)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_after_crash_gives_identical_weights(tmp_path):
    cfg = dict(steps=40, lr=5e-3, ckpt_every=10, log_every=5)
    ref = train(ToyRecipe(), TrainConfig(out_dir=str(tmp_path / "a"), **cfg), progress=False)["model"]
    with pytest.raises(KeyboardInterrupt):
        train(_Crashing(crash_at=25), TrainConfig(out_dir=str(tmp_path / "b"), **cfg), progress=False)
    assert json.loads((tmp_path / "b" / "last.json").read_text())["step"] == 20
    resumed = train(ToyRecipe(), TrainConfig(out_dir=str(tmp_path / "b"), **cfg), progress=False)["model"]
    for k, v in _weights(ref).items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # the resumed run rewrote the log after step 20, no duplicates


SCRIPT = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from mimofm.training.toy import ToyRecipe
    from mimofm.training.trainer import TrainConfig, train

    class Slow(ToyRecipe):
        def loss(self, model, batch, step):
            time.sleep(float(sys.argv[2]))
            return super().loss(model, batch, step)

    cfg = TrainConfig(steps=60, lr=5e-3, ckpt_every=7, log_every=3, out_dir=sys.argv[1])
    train(Slow(), cfg, progress=False)
""")


def _run(out: Path, delay: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(delay)], env=env)


def test_sigkill_and_resume_subprocess(tmp_path):
    """Kill -9 a training process mid-run, resume it: the final weights equal an uninterrupted run's."""
    assert _run(tmp_path / "ref", 0.0).wait(timeout=120) == 0
    p = _run(tmp_path / "killed", 0.03)
    card = tmp_path / "killed" / "last.json"
    deadline = time.time() + 60
    while time.time() < deadline and not (card.exists() and json.loads(card.read_text())["step"] >= 14):
        time.sleep(0.05)
    time.sleep(0.1)  # somewhere inside the next interval, maybe during a checkpoint write
    p.send_signal(signal.SIGKILL)
    p.wait()
    step_at_kill = json.loads(card.read_text())["step"]
    assert 14 <= step_at_kill < 60
    assert _run(tmp_path / "killed", 0.0).wait(timeout=120) == 0
    a = load_file(str(tmp_path / "ref" / "last.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last.safetensors"))
    for k in a:
        if k.startswith("model."):
            assert torch.equal(a[k], b[k]), k


# ---- tampered checkpoints ------------------------------------------------------------------


@pytest.fixture
def ckpt(tmp_path):
    m = ToyPrecoder(2, 4)
    opt = torch.optim.AdamW(m.parameters())
    m(torch.randn(3, 2, 4, dtype=torch.complex64)).abs().sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c", m, optimizer=opt, step=7, config={"a": 1})
    return tmp_path / "c"


def test_roundtrip_restores_everything(ckpt):
    m, opt = ToyPrecoder(2, 4), None
    m2 = ToyPrecoder(2, 4)
    opt = torch.optim.AdamW(m2.parameters())
    card = load_checkpoint(ckpt, m2, opt)
    assert card["step"] == 7 and card["config"] == {"a": 1} and len(opt.state) > 0
    assert not any(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))


def _rewrite(stem: Path, tensors: dict):
    save_file(tensors, str(stem.with_suffix(".safetensors")))
    card = json.loads(stem.with_suffix(".json").read_text())
    card["tensors_sha256"] = sha256_file(stem.with_suffix(".safetensors"))
    stem.with_suffix(".json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    "tamper, match",
    [
        ("truncate", "checksum"),
        ("flip-byte", "checksum"),
        ("extra-tensor", "unexpected"),
        ("wrong-dtype", "expects"),
        ("bad-json", "not valid JSON"),
        ("not-a-checkpoint", "not a mimofm checkpoint"),
        ("wrong-size", "expects"),
        ("missing", "does not exist"),
    ],
)
def test_tampered_checkpoints_are_rejected(ckpt, tamper, match):
    st, js = ckpt.with_suffix(".safetensors"), ckpt.with_suffix(".json")
    model = ToyPrecoder(2, 4)
    if tamper == "truncate":
        st.write_bytes(st.read_bytes()[:-100])
    elif tamper == "flip-byte":
        b = bytearray(st.read_bytes())
        b[-5] ^= 0xFF
        st.write_bytes(bytes(b))
    elif tamper == "extra-tensor":
        t = load_file(str(st))
        t["model.evil"] = torch.zeros(3)
        _rewrite(ckpt, t)
    elif tamper == "wrong-dtype":
        t = load_file(str(st))
        t["model.net.0.weight"] = t["model.net.0.weight"].double()
        _rewrite(ckpt, t)
    elif tamper == "bad-json":
        js.write_text("{not json")
    elif tamper == "not-a-checkpoint":
        js.write_text(json.dumps({"format": "other"}))
    elif tamper == "wrong-size":
        model = ToyPrecoder(4, 4)  # a checkpoint for 2 users loaded into a 4-user model
    elif tamper == "missing":
        st.unlink()
    with pytest.raises(MimofmInputError, match=match):
        load_weights(ckpt, model)


def test_a_non_finite_gradient_skips_the_update_instead_of_poisoning_the_weights(tmp_path):
    import json

    import torch

    from mimofm.training.trainer import TrainConfig, train

    class NaNGradAtStep2:
        name = "nan-grad"

        def build_model(self):
            return torch.nn.Linear(3, 1)

        def batch(self, step):
            return torch.ones(4, 3) * (step + 1)

        def loss(self, model, x, step):
            loss = (model(x) - 1).square().mean()
            if step == 2:  # finite loss, NaN gradient: d/du sqrt(u²) at u = 0
                u = sum(p.sum() for p in model.parameters()) * 0
                loss = loss + torch.sqrt(u * u)
            return loss, {}

        def evaluate(self, model):
            return {}

        def config(self):
            return {}

    out = train(
        NaNGradAtStep2(),
        TrainConfig(steps=5, lr=0.01, out_dir=str(tmp_path), ckpt_every=5, log_every=1, grad_clip=1.0),
        progress=False,
    )
    assert all(bool(torch.isfinite(p).all()) for p in out["model"].parameters())
    logs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if "skipped" in r] == [2]
    # the step's own record is still written, its NaN gradient norm as null
    assert [r["grad_norm"] for r in logs if r.get("step") == 2 and "loss" in r] == [None]


def test_bf16_autocast_trains_and_the_card_records_precision_and_samples(tmp_path):
    rec = ToyRecipe()
    torch.manual_seed(0)
    before = rec.evaluate(rec.build_model())["sum_rate"]
    out = train(
        rec,
        TrainConfig(steps=300, lr=1e-2, ckpt_every=300, precision="bf16", out_dir=str(tmp_path)),
        progress=False,
    )
    assert out["metrics"]["sum_rate"] > before + 0.1
    assert all(p.dtype == torch.float32 for p in out["model"].parameters())  # autocast, not a bf16 model
    meta = json.loads((tmp_path / "last.json").read_text())["meta"]
    assert (
        meta["precision"] == "bf16" and meta["device"] == "cpu" and meta["samples_per_step"] == rec.batch_size
    )


def test_batches_move_to_the_device_whole_and_devices_are_validated():
    from mimofm.training.trainer import _comparable, _to

    batch = {"h": [torch.zeros(2, 3), torch.ones(1)], "t": (torch.zeros(1), "name", 3), "x": 1.5}
    moved = _to(batch, torch.device("meta"))
    assert moved["h"][0].is_meta and moved["h"][1].is_meta and moved["t"][0].is_meta
    assert isinstance(moved["t"], tuple) and moved["t"][1:] == ("name", 3) and moved["x"] == 1.5
    assert _to(batch, torch.device("cpu")) is batch
    with pytest.raises(MimofmInputError, match="precision"):
        TrainConfig(precision="fp8").validate()
    if not torch.cuda.is_available():
        with pytest.raises(MimofmInputError, match="no GPU"):
            TrainConfig(device="cuda").validate()
        TrainConfig(device="auto").validate()  # falls back to the CPU
    # a resume may change the device, nothing else
    a = {"train": {"device": "cpu", "lr": 1e-3}, "recipe": {}}
    assert _comparable(a) == _comparable({"train": {"device": "cuda", "lr": 1e-3}, "recipe": {}})
    assert _comparable(a) != _comparable({"train": {"device": "cpu", "lr": 2e-3}, "recipe": {}})
    assert _comparable({"train": {"out_dir": "runs/a"}}) == _comparable(
        {"train": {"out_dir": "runs/b"}}
    )  # moved


def test_a_setting_added_after_a_run_resumes_it_only_at_its_default():
    from mimofm.training.toy import ToyRecipe
    from mimofm.training.trainer import _same_run

    now = {"train": {"lr": 1e-3}, "recipe": {"num_ue": 2, "snr_db": 10.0}}
    old = {"train": {"lr": 1e-3}, "recipe": {"num_ue": 2}}  # made before `snr_db` existed
    assert _same_run(old, now, ToyRecipe())
    assert not _same_run(old, {**now, "recipe": {"num_ue": 2, "snr_db": 20.0}}, ToyRecipe())
    assert not _same_run({"train": {"lr": 1e-3}, "recipe": {"num_ue": 3}}, now, ToyRecipe())
    assert not _same_run(old, {**now, "train": {"lr": 2e-3}}, ToyRecipe())


def test_keep_best_returns_the_best_evaluated_weights_and_resumes_from_it(tmp_path):
    cfg = dict(steps=60, lr=3e-2, eval_every=10, keep_best="sum_rate", ckpt_every=30, log_every=10)
    out = train(ToyRecipe(), TrainConfig(**cfg, out_dir=str(tmp_path / "a")), progress=False)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval"]["sum_rate"] for r in log if "eval" in r}
    assert sorted(evals) == [0, 10, 20, 30, 40, 50, 60]
    step = max(evals, key=evals.get)
    card = json.loads((tmp_path / "a" / "best.json").read_text())
    assert (
        out["checkpoint"] == tmp_path / "a" / "best" and card["step"] == step == out["metrics"]["best_step"]
    )
    assert card["meta"]["value"] == evals[step] == out["metrics"]["best/sum_rate"]
    assert ToyRecipe().evaluate(out["model"])["sum_rate"] == pytest.approx(evals[step], rel=1e-6)
    # killed after its second checkpoint and resumed: the same best
    with pytest.raises(KeyboardInterrupt):
        train(_Crashing(crash_at=45), TrainConfig(**cfg, out_dir=str(tmp_path / "b")), progress=False)
    again = train(ToyRecipe(), TrainConfig(**cfg, out_dir=str(tmp_path / "b")), progress=False)
    assert again["metrics"]["best_step"] == step
    for k, v in _weights(out["model"]).items():
        assert torch.equal(v, again["model"].state_dict()[k]), k


def test_keep_best_needs_evaluations_and_a_known_metric(tmp_path):
    with pytest.raises(MimofmInputError, match="eval_every"):
        TrainConfig(keep_best="sum_rate").validate()
    with pytest.raises(MimofmInputError, match="not among the evaluation"):
        train(
            ToyRecipe(),
            TrainConfig(steps=4, eval_every=2, keep_best="rate", out_dir=str(tmp_path)),
            progress=False,
        )


def test_a_loop_setting_added_after_a_run_resumes_it_only_at_its_default():
    from mimofm.training.trainer import _same_run

    old = {"train": {"lr": 1e-3}, "recipe": {"num_ue": 2}}  # made before `keep_best` existed
    assert _same_run(old, {"train": {"lr": 1e-3, "keep_best": ""}, "recipe": {"num_ue": 2}}, ToyRecipe())
    assert not _same_run(old, {"train": {"lr": 1e-3, "keep_best": "x"}, "recipe": {"num_ue": 2}}, ToyRecipe())
