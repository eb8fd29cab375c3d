"""The names :mod:`mimofm.evaluation.classical_speed` times by default (methods and precisions), torch-free so
that ``mimofm bench classical --help`` shows them without loading PyTorch."""

from __future__ import annotations

__all__ = ["DEFAULT_METHODS", "PRECISIONS"]

DEFAULT_METHODS = (
    "mrt",
    "zf",
    "zf-wf",
    "rzf",
    "rzf-eq",
    "wmmse",
    "wmmse-1",
    "wmmse-3",
    "wmmse-10",
    "dpc",
)
PRECISIONS = ("single", "double")
