"""What the fm and papp paper analogues share: both evaluate on the held-out bundled sites' test positions.

* :class:`HeldoutSpec`, the base of their spec dataclasses: the SNR sweep, the sample budget and the SNR of
  their Table I, and the paired-evaluation config these give.
* The reading of the result rows of such an evaluation: dicts with ``site``, ``snr_db``, ``precoder`` and
  ``sum_rate_mean`` (bit/s/Hz), one per (site, SNR, precoder), as
  :func:`mimofm.evaluation.evaluate.compare_checkpoints` writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mimofm.channels.bundled import bundled_dir
from mimofm.channels.catalog import BUNDLED_HELDOUT
from mimofm.evaluation.evaluate import EvalConfig

__all__ = [
    "HeldoutSpec",
    "RateTable",
    "heldout_files",
    "mean_ratios",
    "rate_table",
    "ratio_table_md",
    "sites_of",
]

RateTable = dict[tuple[str, float, str], float]  # (site, snr_db, precoder) → mean sum rate, bit/s/Hz


@dataclass(frozen=True)
class HeldoutSpec:
    """Operating points of a paper analogue evaluated on the held-out sites (defaults: the published run)."""

    snrs_db: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0)  # the sweep (median single-user SNR, dB)
    samples: int = 1000  # multi-user samples per site and SNR
    table1_snr_db: float = 20.0

    def eval_config(self, precoders: Sequence[str], samples: int | None = None) -> EvalConfig:
        """Paired evaluation of ``precoders`` on test positions at every SNR of ``snrs_db``, with ``samples``
        multi-user samples per site and SNR (None: this spec's)."""
        n = self.samples if samples is None else samples
        return EvalConfig(precoders=list(precoders), snr_db=list(self.snrs_db), samples=n, positions="test")


def heldout_files() -> dict[str, str]:
    """``{site: path}`` of the held-out bundled site files, in catalog order."""
    return {n: str(bundled_dir() / f"{n}.h5") for n in BUNDLED_HELDOUT}


def rate_table(rows: Iterable[dict]) -> RateTable:
    """``{(site, snr_db, precoder): sum_rate_mean}`` of result rows."""
    return {(r["site"], r["snr_db"], r["precoder"]): r["sum_rate_mean"] for r in rows}


def sites_of(rows: Iterable[dict]) -> list[str]:
    """The sites of result rows, in order of first appearance."""
    return list(dict.fromkeys(r["site"] for r in rows))


def mean_ratios(m: RateTable, p: str, sites: Sequence[str], snrs: Sequence[float]) -> list[float]:
    """Per SNR of ``snrs``, the mean over ``sites`` of ``p``'s sum rate ÷ WMMSE's."""
    return [sum(m[(s, x, p)] / m[(s, x, "wmmse")] for s in sites) / len(sites) for x in snrs]


def ratio_table_md(
    m: RateTable, methods: Sequence[str], sites: Sequence[str], snrs: Sequence[float]
) -> list[str]:
    """Markdown lines of a table: a row per method, its :func:`mean_ratios` at each SNR and their mean."""
    out = [
        "| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " | mean |",
        "|---|" + "---|" * (len(snrs) + 1),
    ]
    for p in methods:
        r = mean_ratios(m, p, sites, snrs)
        out.append(f"| {p} | " + " | ".join(f"{v:.3f}" for v in r) + f" | {sum(r) / len(r):.3f} |")
    return out
