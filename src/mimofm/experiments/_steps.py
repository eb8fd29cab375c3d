"""Resumable experiment steps: a step is a function of its inputs, its result is cached on disk.

A :class:`Steps` object owns one run folder. ``steps.run(name, fn, inputs, upstream)`` hashes the step's
name, its ``inputs`` (JSON-able spec fields) and the keys of the upstream results it depends on; when a
result with that key is already stored under ``<run>/.steps/``, it is reloaded, otherwise ``fn()`` is
called and its result written atomically (temp file + rename, :mod:`mimofm._io`). A killed run therefore
resumes where it stopped, and changing an input re-runs the step and everything downstream of it.

Results are JSON (dicts, lists, numbers, strings) or, with ``kind="npz"``, a ``{name: array}`` dict of
NumPy arrays. No pickle.

Also the one logging setup of the experiments and benchmark scripts: :func:`setup_logging`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mimofm._io import atomic_path

__all__ = ["StepResult", "Steps", "setup_logging", "step_key"]

log = logging.getLogger("mimofm.experiments")


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once: Rich's handler on a terminal, plain timestamped lines otherwise."""
    root = logging.getLogger()
    if getattr(root, "_mimofm_configured", False):
        return
    if sys.stderr.isatty():
        from rich.logging import RichHandler  # deferred: only on a terminal

        handler: logging.Handler = RichHandler(show_path=False, log_time_format="[%H:%M:%S]")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    root._mimofm_configured = True  # type: ignore[attr-defined]


def _canonical(obj: Any) -> Any:
    """A JSON-able form of ``obj`` that hashes the same across runs (paths as strings, tuples as lists)."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"step input of type {type(obj).__name__} cannot be hashed; pass JSON-able values")


def step_key(name: str, inputs: dict[str, Any], upstream: tuple[str, ...] = ()) -> str:
    """The 64-hex-digit SHA-256 of a step's name, its inputs and its upstream results' keys."""
    doc = {"step": name, "inputs": _canonical(inputs), "upstream": list(upstream)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, allow_nan=False).encode()).hexdigest()


@dataclass(frozen=True)
class StepResult:
    """A step's ``value`` and the ``key`` it is stored under (pass it downstream as ``upstream``)."""

    name: str
    key: str
    value: Any
    cached: bool


class Steps:
    """The cached steps of one run folder (``root``); results live in ``root/.steps``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.store = self.root / ".steps"

    def path(self, name: str, key: str, kind: str = "json") -> Path:
        """Where the result of step ``name`` with ``key`` is stored."""
        safe = name.replace("/", "-").replace(" ", "_")
        return self.store / f"{safe}.{key[:16]}.{kind}"

    def cached(
        self,
        name: str,
        inputs: dict[str, Any] | None = None,
        upstream: tuple[StepResult, ...] = (),
        kind: str = "json",
    ) -> StepResult | None:
        """The stored result of this step with these inputs and upstream, or None when it was not run."""
        key = step_key(name, inputs or {}, tuple(u.key for u in upstream))
        path = self.path(name, key, kind)
        return StepResult(name, key, self._load(path, kind), True) if path.exists() else None

    def run(
        self,
        name: str,
        fn: Callable[[], Any],
        inputs: dict[str, Any] | None = None,
        upstream: tuple[StepResult, ...] = (),
        kind: str = "json",
    ) -> StepResult:
        """``fn()``'s result, reloaded when this step was already run with the same inputs and upstream.

        ``kind``: ``"json"`` (any JSON value) or ``"npz"`` (``{name: array}`` of NumPy arrays).
        """
        if kind not in ("json", "npz"):
            raise ValueError(f"`kind` must be 'json' or 'npz', not {kind!r}")
        key = step_key(name, inputs or {}, tuple(u.key for u in upstream))
        path = self.path(name, key, kind)
        if path.exists():
            log.debug("step %s: cached (%s)", name, path.name)
            return StepResult(name, key, self._load(path, kind), True)
        log.info("step %s", name)
        value = fn()
        self._save(path, kind, key, name, inputs or {}, value)
        return StepResult(name, key, self._load(path, kind) if kind == "npz" else value, False)

    @staticmethod
    def _load(path: Path, kind: str) -> Any:
        if kind == "npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        return json.loads(path.read_text())["result"]

    @staticmethod
    def _save(path: Path, kind: str, key: str, name: str, inputs: dict, value: Any) -> None:
        with atomic_path(path) as tmp:
            if kind == "npz":
                arrays = {k: np.asarray(v) for k, v in value.items()}
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
            else:
                doc = {"step": name, "key": key, "inputs": _canonical(inputs), "result": value}
                tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
