"""matplotlib without a display, and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mimofm._io import atomic_path

__all__ = ["plt", "savefig", "variant_styles"]


def savefig(fig, path: Path, dpi: int = 130) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically, close it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return path


def variant_styles(names: list[str]) -> dict[str, dict]:
    """Line styles that pair variants with their base: ``X-refined`` (sum-rate refinement: dotted, open
    markers), ``X+dn`` (denoised CSI: dashed) and ``X-refined+dn`` (dash-dot, open markers) take ``X``'s
    colour, so a plot reads as base + what each variant adds."""
    base = lambda n: n.replace("-refined", "").replace("+dn", "")  # noqa: E731
    colours = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(dict.fromkeys(base(n) for n in names))}
    line = {(False, False): "-", (True, False): ":", (False, True): "--", (True, True): "-."}
    return {
        n: {
            "color": colours[base(n)],
            "linestyle": line[("-refined" in n, "+dn" in n)],
            "marker": "o",
            "markersize": 3,
            "markerfacecolor": "none" if "-refined" in n else colours[base(n)],
        }
        for n in names
    }
