"""One experiment module per paper (and the classical study): each owns its spec (the paper's constants
and operating points), its resumable steps (:mod:`._steps`) and a ``render`` that turns its stored results
into tables and figures with the generic :mod:`mimofm.reports` helpers.

Modules: :mod:`.fm_paper`, :mod:`.papp_paper`, :mod:`.wifoe_paper` (and :mod:`.wifoe_operating_point`,
its calibrated point), :mod:`.classical`, the combined report (:mod:`.report`) and the BENCHMARKS.md
page (:mod:`.benchmarks_page`). Import the submodule you need; this package imports nothing heavy itself.
"""

__all__: list[str] = []
