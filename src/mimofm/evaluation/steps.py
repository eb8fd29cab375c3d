"""Counting the units of a long evaluation or benchmark, for a progress bar with a time estimate.

The long-running functions (:func:`~mimofm.evaluation.evaluate.evaluate_sets`,
:func:`~mimofm.evaluation.latency.latency`, :func:`~mimofm.evaluation.scaling.scaling`,
:func:`~mimofm.evaluation.classical_speed.classical_speed`,
:func:`~mimofm.evaluation.classical_speed.form_crossover`) take, beside their ``progress(message)``
callback, an optional ``steps(done, total)`` callback: called with ``(0, total)`` before the first unit
(the total is known up front), then after each finished unit with the units done so far, so ``done``
reaches ``total`` when the function returns.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["StepCallback", "StepCounter"]

StepCallback = Callable[[int, int], None]
"""``steps(done, total)``: units of work finished so far and the total, both counts."""


class StepCounter:
    """Counts finished units towards ``total`` and reports ``(done, total)`` to ``report`` (if any), first
    ``(0, total)`` on creation."""

    def __init__(self, total: int, report: StepCallback | None = None):
        self.total, self.done, self.report = int(total), 0, report
        if report is not None:
            report(0, self.total)

    def advance(self) -> None:
        """One more unit finished: report ``(done, total)``."""
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)
