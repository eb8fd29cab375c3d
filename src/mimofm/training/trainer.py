"""The one training loop of mimofm (every model's recipe plugs into it).

Reads top to bottom: resume → for each step: [evaluate] → batch → forward/loss → backward → clip →
step → [log] → [checkpoint]. Logs go to ``log.jsonl`` and, when tensorboard is installed, to TensorBoard
event files in ``tb/``. A *recipe* provides the model, the batch of a given step and the loss.
Batches are pure functions of ``(seed, step)`` and the learning rate is a pure function of the step,
so a run killed at any point and resumed from its last checkpoint (weights, optimizer, RNG state)
ends with exactly the weights of an uninterrupted run on the CPU.

Model selection: with ``keep_best: METRIC`` (one of the recipe's evaluation keys, higher is better) and
``eval_every``, every evaluation that beats the best so far writes the weights to ``best``; the run
returns the best weights and ``best`` as its checkpoint (``last`` stays for resuming). The recipe's
evaluation must then be on data held out from training (e.g. wifoe's ``val_fraction``).

Devices: ``device: cuda`` (or ``auto``) moves the model and every batch to the GPU (``cuda:LOCAL_RANK``
under ``torchrun``); recipes build batches on the CPU and their losses follow the batch's device;
evaluation runs on a CPU copy of the model. ``precision: bf16`` runs forward and loss under
``torch.autocast(bfloat16)`` (weights, optimizer and the rate computations stay in float32/complex).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mimofm._io import atomic_path
from mimofm.core.validation import MimofmInputError
from mimofm.models.checkpoint import load_weights
from mimofm.training.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["MAX_SKIPPED", "Recipe", "TrainConfig", "lr_at", "train"]

MAX_SKIPPED = 20  # consecutive non-finite gradients before a run gives up


@dataclass
class TrainConfig:
    """Loop settings (the recipe holds the model's own settings)."""

    steps: int = 1000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    keep_best: str = ""  # an evaluation key to maximize: the run returns the best evaluated weights
    ckpt_every: int = 100
    out_dir: str = "runs/train"
    device: str = "cpu"  # cpu | cuda | auto (cuda when available)
    precision: str = "fp32"  # fp32 | bf16 (autocast)

    def validate(self) -> None:
        """Raise :class:`MimofmInputError` for an unknown device or precision, ``cuda`` without a GPU, or
        out-of-range steps, learning rate, schedule, clipping or ``keep_best`` settings."""
        if self.device not in ("cpu", "cuda", "auto") or self.precision not in ("fp32", "bf16"):
            raise MimofmInputError(
                f"`device` must be cpu, cuda or auto and `precision` fp32 or bf16, got "
                f"{self.device!r}, {self.precision!r}"
            )
        if self.device == "cuda" and not torch.cuda.is_available():
            raise MimofmInputError("`device: cuda` but torch sees no GPU here; use cpu or auto")
        if self.steps < 1 or self.ckpt_every < 1 or self.log_every < 1:
            raise MimofmInputError("`steps`, `ckpt_every` and `log_every` must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise MimofmInputError(f"`lr` must be finite and > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1 or self.warmup < 0 or self.grad_clip < 0:
            raise MimofmInputError("`min_lr_ratio` must be in [0, 1], `warmup` and `grad_clip` >= 0")
        if self.keep_best and self.eval_every < 1:
            raise MimofmInputError(
                "`keep_best` needs `eval_every` >= 1 (the best is chosen among evaluations)"
            )


class Recipe(Protocol):
    """What a model family gives the loop."""

    name: str

    def build_model(self) -> torch.nn.Module:
        """The model to train, freshly built (or initialised from a checkpoint the recipe names)."""
        ...

    def batch(self, step: int) -> Any:
        """The training batch of ``step``, built on the CPU; deterministic in (recipe seed, step)."""
        ...

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """``(loss, stats)``: the scalar loss ``[]`` to minimise on ``batch`` and floats to log."""
        ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Evaluation metrics of ``model`` (a CPU copy), higher is better for a ``keep_best`` key."""
        ...

    def config(self) -> dict:
        """The recipe's settings as a dict (saved with the checkpoint and in the run's config)."""
        ...


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio·lr`` at the last step."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _truncate_log(path: Path, before_step: int) -> None:
    """Keep only log lines of steps < ``before_step`` (a resumed run rewrites the rest)."""
    if not path.exists():
        return
    keep = [
        ln
        for ln in path.read_text().splitlines()
        if ln.strip() and json.loads(ln).get("step", 0) < before_step
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(ln + "\n" for ln in keep))


def _finite(v):
    """JSON-safe: a non-finite float becomes ``None`` (a skipped update's gradient norm is NaN)."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _log(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(_finite(record), allow_nan=False) + "\n")


def _tensorboard(out: Path, start: int):
    """A TensorBoard writer in ``out/tb`` (events after ``start`` dropped on resume), or None
    without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"), purge_step=start)


def _scalars(writer, prefix: str, record: dict, step: int) -> None:
    if writer is None:
        return
    for k, v in record.items():
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            writer.add_scalar(f"{prefix}/{k}", v, step)


def _distributed() -> tuple[int, int]:
    """``(rank, world size)``; under ``torchrun`` (``WORLD_SIZE > 1``) joins the process group (gloo on the
    CPU, NCCL on CUDA) if the caller has not."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _comparable(config: dict) -> dict:
    """A run's config without the settings a resume may change (the device; the folder, which may move)."""
    return {
        **config,
        "train": {k: v for k, v in config.get("train", {}).items() if k not in ("device", "out_dir")},
    }


def _defaults(obj: Any) -> dict:
    """A dataclass's field defaults (JSON form)."""
    out = {}
    for f in dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else ():
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return json.loads(json.dumps(out))


def _same_run(stored: dict, now: dict, recipe: Any) -> bool:
    """Whether a resume continues the stored run: the same config, where a recipe or loop setting added to
    mimofm after the run was made counts as the same while it keeps its default (the run behaved that way)."""
    now = dict(now)
    for section, defaults in (("recipe", _defaults(recipe)), ("train", _defaults(TrainConfig))):
        old, new = stored.get(section, {}), now.get(section, {})
        now[section] = {k: v for k, v in new.items() if k in old or k not in defaults or defaults[k] != v}
    return _comparable(stored) == _comparable(now)


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(dev)
    return dev


def _to(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (nested lists, tuples, dicts) on ``device``."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _evaluate(recipe: Recipe, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
    """The recipe's evaluation (built on the CPU) of ``model``, on a CPU copy when training elsewhere."""
    model.eval()
    with torch.no_grad():
        ev = recipe.evaluate(model if device.type == "cpu" else copy.deepcopy(model).cpu())
    model.train()
    return ev


class _Best:
    """The best evaluation so far of ``cfg.keep_best`` and its weights on disk (``<out_dir>/best``)."""

    def __init__(self, metric: str, stem: Path, config: dict, meta, resumed: bool) -> None:
        self.metric, self.stem, self.config, self.meta = metric, stem, config, meta
        card = stem.with_suffix(".json")  # a fresh run starts over; a resumed one goes on from its best
        known = metric and resumed and card.exists()
        self.value = json.loads(card.read_text())["meta"]["value"] if known else -math.inf

    def offer(self, ev: dict[str, float], model: torch.nn.Module, step: int) -> None:
        if not self.metric:
            return
        if self.metric not in ev:
            raise MimofmInputError(
                f"`keep_best: {self.metric}` is not among the evaluation's keys {sorted(ev)}"
            )
        if ev[self.metric] > self.value:
            self.value = ev[self.metric]
            save_checkpoint(
                self.stem,
                model,
                step=step,
                config=self.config,
                rng=False,
                meta={**self.meta(), "metric": self.metric, "value": self.value},
            )


def _average_gradients(model: torch.nn.Module, world: int) -> None:
    """Data parallelism: every rank's gradients become their mean over the ranks (what DDP computes)."""
    for p in model.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= world


def train(recipe: Recipe, cfg: TrainConfig, *, resume: bool = True, progress: bool = True) -> dict:
    """Train ``recipe`` under ``cfg``; returns ``{"model", "step", "metrics", "checkpoint"}``.

    Under ``torchrun --nproc-per-node R`` every rank runs this same function: the model starts from the
    same weights, rank ``r`` trains on the recipe's batches ``step·R + r``, gradients are averaged over
    the ranks before each update (so the ranks stay identical), and rank 0 alone writes logs and
    checkpoints. Exact resume is guaranteed for a single process.
    """
    cfg.validate()
    rank, world = _distributed()
    device = _device(cfg)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem, log_path = out / "last", out / "log.jsonl"
    torch.manual_seed(cfg.seed)
    model = recipe.build_model().to(device)
    if world > 1:
        for t in model.state_dict().values():
            dist.broadcast(t, 0)
        torch.manual_seed(cfg.seed + rank)  # dropout differs per rank, the data too
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    config = {"train": asdict(cfg), "recipe": recipe.config(), "recipe_name": recipe.name}

    start = 0
    if resume and stem.with_suffix(".json").exists():
        card = load_checkpoint(stem, model, opt)  # loads onto the model's device
        if not _same_run(card["config"], json.loads(json.dumps(config)), recipe):
            raise MimofmInputError(
                f"{stem}.json was trained with a different config; use a new --out-dir "
                "or resume with the same settings"
            )
        start = int(card["step"])
    if rank == 0:
        _truncate_log(log_path, start)
    tb = _tensorboard(out, start) if rank == 0 else None  # `tensorboard --logdir <out_dir>/tb`
    log = _log if rank == 0 else (lambda path, record: None)

    # channel samples per update over all ranks (the training-cost table), when the recipe says
    samples_per_step = recipe.samples_per_step() * world if hasattr(recipe, "samples_per_step") else None
    metrics: dict[str, float] = {}
    arch = getattr(model, "cfg", None)

    def meta() -> dict:  # a checkpoint card's facts; a loader reads the architecture from here
        return {
            "seconds": time.perf_counter() - t0,
            "torch": torch.__version__,
            "world_size": world,
            "device": str(device),
            "precision": cfg.precision,
            "samples_per_step": samples_per_step,
            "architecture": arch.to_dict() if hasattr(arch, "to_dict") else None,
        }

    best = _Best(cfg.keep_best if rank == 0 else "", out / "best", config, meta, start > 0)
    skipped = 0  # consecutive updates skipped for a non-finite gradient
    t0 = time.perf_counter()
    bar = Progress(
        TextColumn(f"{recipe.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not progress or rank != 0,
    )
    with bar:
        task = bar.add_task("train", total=cfg.steps, completed=start, info="")
        model.train()
        for step in range(start, cfg.steps):
            if cfg.eval_every and step % cfg.eval_every == 0:
                ev = _evaluate(recipe, model, device)
                log(log_path, {"step": step, "eval": ev})
                _scalars(tb, "eval", ev, step)
                best.offer(ev, model, step)
            lr = lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = _to(recipe.batch(step * world + rank), device)
            with autocast:
                loss, metrics = recipe.loss(model, batch, step)
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at step {step}; the last checkpoint is {stem}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                _average_gradients(model, world)
            gnorm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.grad_clip if cfg.grad_clip else float("inf")
            )
            if not torch.isfinite(gnorm):  # a NaN/inf gradient would poison every weight: skip this update
                skipped += 1
                log(log_path, {"step": step, "skipped": "non-finite gradient", "consecutive": skipped})
                if skipped >= MAX_SKIPPED:
                    raise RuntimeError(
                        f"{skipped} consecutive non-finite gradients at step {step}; the last "
                        f"checkpoint is {stem}"
                    )
            else:
                skipped = 0
                opt.step()
            if step % cfg.log_every == 0 or step + 1 == cfg.steps:
                rec = {"step": step, "loss": loss.item(), "lr": lr, **metrics}
                if cfg.grad_clip:
                    rec["grad_norm"] = float(gnorm)
                log(log_path, rec)
                _scalars(tb, "train", rec, step)
                bar.update(task, info=f"loss {loss.item():.4g}")
            if ((step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps) and rank == 0:
                save_checkpoint(stem, model, optimizer=opt, step=step + 1, config=config, meta=meta())
            bar.update(task, advance=1)
    final = _evaluate(recipe, model, device)
    model.eval()
    log(log_path, {"step": cfg.steps, "eval": final})
    _scalars(tb, "eval", final, cfg.steps)
    best.offer(final, model, cfg.steps)
    if world > 1:
        dist.barrier()  # rank 0's last checkpoint is on disk before anyone returns
    if tb is not None:
        tb.close()
    if not cfg.keep_best:
        return {"model": model, "step": cfg.steps, "metrics": final, "checkpoint": stem}
    card = load_weights(best.stem, model)  # every rank reads rank 0's file (after the barrier)
    model.eval()
    metrics = {**final, "best_step": card["step"], f"best/{cfg.keep_best}": card["meta"]["value"]}
    log(log_path, {"step": cfg.steps, "best": {"step": card["step"], cfg.keep_best: card["meta"]["value"]}})
    return {"model": model, "step": cfg.steps, "metrics": metrics, "checkpoint": best.stem}
