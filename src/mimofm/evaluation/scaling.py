"""Scaling: time per precoder and sum rate ÷ WMMSE as the array (N_T) and the user count (N_U) grow.

Two sweeps, each point on its own seeded clustered channels (:func:`mimofm.evaluation.complexity._channels`,
median single-user SNR 10 dB): **antennas** ``N_T ∈ antennas`` at ``N_U = users_fixed``, and **users**
``N_U ∈ users`` at ``N_T = antennas_fixed``. At every point each contender precodes the same ``batch``
channels; its time is the median of ``repeats`` batched calls ÷ ``batch`` and is reported as a ratio to
WMMSE's in the same run; its quality is its mean sum rate ÷ WMMSE's on those channels.

What each neural model can do at another size (said in every row's ``note``):

- **fm** and **papp**: their input layers are sized by ``K`` and ``N`` (fm: the ``2N+1``-wide CSI embedding
  and the ``K``-wide rate token; papp: the CNN feature flattened over ``K × N``), so a checkpoint serves
  the size it was trained at. At that size the shipped model is timed and scored; at the other sizes the
  *same architecture with random weights* is timed (time does not depend on the weights) and no rate is
  reported: quality there needs a model trained at that size.
- **wifoe**: per-user tokens through a shared trunk, so one branch serves any ``K`` (``N_t``, the pilots
  and the feedback bits are fixed by the task). Its sweep runs the shipped checkpoint end to end (pilots
  with noise, B-bit feedback, precoder) on its task's test drops for ``K ∈ users`` (≤ ``N_t``), against
  perfect-CSI WMMSE on the same drops; ``K`` outside the trained range is marked.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mimofm.channels.tasks import DEFAULT_POSITIONS, draw_task_samples, load_task
from mimofm.channels.tr38901 import get_task
from mimofm.core.linkbudget import FDDOperatingPoint
from mimofm.core.rates import sum_rate
from mimofm.core.validation import MimofmInputError
from mimofm.evaluation.complexity import _channels, _timed
from mimofm.evaluation.steps import StepCallback, StepCounter
from mimofm.evaluation.wifoe_eval import checkpoint_pilot_rule, rule_pilot_snr
from mimofm.models.zoo import load_fm, load_papp, load_wifoe, shipped_checkpoint
from mimofm.precoders.registry import get_precoder
from mimofm.precoders.wmmse import wmmse

__all__ = ["NEURAL", "ScalingConfig", "scaling"]

NEURAL = ("fm", "papp")


@dataclass
class ScalingConfig:
    """The two sweeps of :func:`scaling` (antennas at ``users_fixed``, users at ``antennas_fixed``), the
    methods,
    batch and repeats, and wifoe's task and received SNR (dB)."""

    antennas: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    users: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    users_fixed: int = 4
    antennas_fixed: int = 64
    methods: list[str] = field(default_factory=lambda: ["mrt", "zf", "rzf", "wmmse", "fm", "papp"])
    batch: int = 256
    repeats: int = 3
    seed: int = 0
    wifoe_task: str | None = "T4"  # None: no wifoe sweep
    wifoe_snr_db: float = 16.0  # received, with the shipped checkpoint's pilot rule (its calibrated point)

    @classmethod
    def quick(cls) -> ScalingConfig:
        """A small configuration for smoke runs (two sizes per sweep, batch 32, one repeat)."""
        return cls(antennas=[16, 64], users=[2, 4], batch=32, repeats=1)

    def validate(self) -> None:
        """Raise for a configuration without WMMSE or with a size, batch or repeat count below 1."""
        if "wmmse" not in self.methods:
            raise MimofmInputError("include wmmse: every ratio is to WMMSE in the same run")
        if (
            min(
                self.antennas + self.users + [self.batch, self.repeats, self.users_fixed, self.antennas_fixed]
            )
            < 1
        ):
            raise MimofmInputError("sizes, batch and repeats must be >= 1")


def _w(out) -> torch.Tensor:
    return out.w if hasattr(out, "w") else out


def _neural(shipped: torch.nn.Module, k: int, n: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], bool]:
    """``(precode, trained)``: the shipped model at its own size (a user-form model: at every size), else
    its architecture with random weights."""
    if shipped.cfg.input_form == "user" or (shipped.cfg.num_ue, shipped.cfg.num_bs_ant) == (k, n):
        model, trained = shipped, True
    else:
        cfg = dataclasses.replace(shipped.cfg, num_ue=k, num_bs_ant=n)
        torch.manual_seed(0)
        model, trained = type(shipped)(cfg).eval(), False
    return (lambda h: _w(model(h.to(torch.complex64)))), trained


def _point(
    sweep: str, k: int, n: int, cfg: ScalingConfig, shipped: dict, progress, counter: StepCounter
) -> list[dict]:
    h = _channels(cfg.batch, k, n, cfg.seed + 1000 * k + n, "cpu")
    rows, times, rates = [], {}, {}
    for m in cfg.methods:
        if progress:
            progress(f"{sweep}: N_T={n} N_U={k} · {m}")
        note = ""
        if m in NEURAL:
            fn, trained = _neural(shipped[m], k, n)
            note = "shipped" if trained else "random weights: time only"
        else:
            spec = get_precoder(m)
            if spec.kind != "precoder":
                raise MimofmInputError(f"{m!r} is a bound; scale precoders only")
            fn = lambda x, run=spec.run: _w(run(x))  # noqa: E731
            trained = True
        with torch.no_grad():
            times[m] = _timed(fn, h, cfg.repeats) / cfg.batch
            rates[m] = (
                float(sum_rate(h.to(torch.complex128), fn(h).to(torch.complex128)).mean())
                if trained
                else None
            )
        counter.advance()
        rows.append({"sweep": sweep, "num_ue": k, "num_bs_ant": n, "method": m, "note": note})
    for r in rows:
        m = r["method"]
        r.update(
            seconds_per_precoder=times[m],
            time_ratio_to_wmmse=times[m] / times["wmmse"],
            sum_rate=rates[m],
            ratio_to_wmmse=None if rates[m] is None else rates[m] / rates["wmmse"],
        )
    return rows


def _wifoe_users(cfg: ScalingConfig) -> list[int]:
    """The user counts of the wifoe sweep: ``cfg.users`` that its task's array can serve."""
    return [k for k in cfg.users if k <= get_task(cfg.wifoe_task).num_bs_ant] if cfg.wifoe_task else []


def _wifoe_rows(cfg: ScalingConfig, progress, counter: StepCounter | None = None) -> list[dict]:
    counter = counter or StepCounter(0)
    task = get_task(cfg.wifoe_task)
    model = load_wifoe(None)
    pilot = rule_pilot_snr(
        checkpoint_pilot_rule(shipped_checkpoint("wifoe")), cfg.wifoe_snr_db, task.num_bs_ant
    )
    e_s = FDDOperatingPoint(cfg.wifoe_snr_db, "received", pilot).pilot_energy(task.num_bs_ant)
    if task.name not in model.branches:
        raise MimofmInputError(
            f"the shipped wifoe has no branch for {task.name}; its tasks: {', '.join(model.branches)}"
        )
    pos = load_task(task.name, DEFAULT_POSITIONS).split("test")
    rows = []
    for k in _wifoe_users(cfg):
        if progress:
            progress(f"wifoe users: {task.name} N_U={k}")
        h = draw_task_samples(pos, cfg.batch, k, cfg.seed + k, cfg.wifoe_snr_db)
        gen = lambda: torch.Generator().manual_seed(cfg.seed)  # noqa: E731
        fns = {
            "wmmse": lambda x: wmmse(x).w,
            "wifoe": lambda x, gen=gen: model(x, task.name, generator=gen(), pilot_energy=e_s),
        }
        with torch.no_grad():
            t = {m: _timed(f, h, cfg.repeats) / cfg.batch for m, f in fns.items()}
            r = {
                m: float(sum_rate(h.to(torch.complex128), f(h).to(torch.complex128)).mean())
                for m, f in fns.items()
            }
        counter.advance()
        inside = task.min_ue <= k <= task.max_ue
        for m in fns:
            rows.append(
                {
                    "sweep": f"wifoe N_U ({task.name})",
                    "num_ue": k,
                    "num_bs_ant": task.num_bs_ant,
                    "method": m if m == "wmmse" else "wifoe",
                    "note": (
                        "perfect CSI"
                        if m == "wmmse"
                        else "end to end" + ("" if inside else ", K outside training")
                    ),
                    "seconds_per_precoder": t[m],
                    "time_ratio_to_wmmse": t[m] / t["wmmse"],
                    "sum_rate": r[m],
                    "ratio_to_wmmse": r[m] / r["wmmse"],
                }
            )
    return rows


def scaling(
    cfg: ScalingConfig, progress: Callable[[str], None] | None = None, *, steps: StepCallback | None = None
) -> dict:
    """``{"rows": [...], "config", "machine"}`` (row keys: sweep — ``N_T``, ``N_U`` or ``wifoe N_U (task)``
    —, num_ue, num_bs_ant, method, note,
    seconds_per_precoder, time_ratio_to_wmmse, sum_rate, ratio_to_wmmse — the last two ``None`` where no
    trained model exists at that size). ``progress(message)`` as each (point, method) timing starts,
    ``steps(done, total)`` as it finishes (a wifoe user count is one step)."""
    cfg.validate()
    # the shipped neural models, loaded once for every point
    shipped = {m: load_fm() if m == "fm" else load_papp() for m in NEURAL if m in cfg.methods}
    rows = []
    points = [("N_T", cfg.users_fixed, n) for n in cfg.antennas if n >= cfg.users_fixed]
    points += [("N_U", k, cfg.antennas_fixed) for k in cfg.users if k <= cfg.antennas_fixed]
    counter = StepCounter(len(points) * len(cfg.methods) + len(_wifoe_users(cfg)), steps)
    for sweep, k, n in points:
        rows += _point(sweep, k, n, cfg, shipped, progress, counter)
    if cfg.wifoe_task:
        rows += _wifoe_rows(cfg, progress, counter)
    return {
        "config": dataclasses.asdict(cfg),
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": "cpu",
        },
    }
