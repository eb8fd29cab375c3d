"""The small channel sets shipped inside the package (``mimofm/assets/sites``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mimofm.channels.io import load_channels
from mimofm.channels.types import ChannelSet

__all__ = ["bundled_dir", "bundled_sites"]


def bundled_dir() -> Path:
    """The folder of the compact evaluation sites shipped with mimofm (``mimofm/assets/sites``)."""
    return Path(str(resources.files("mimofm") / "assets" / "sites"))


def bundled_sites() -> list[ChannelSet]:
    """Every bundled site (``.h5`` site files and ``.npz``), sorted by file name."""
    files = sorted(list(bundled_dir().glob("*.h5")) + list(bundled_dir().glob("*.npz")))
    return [load_channels(p) for p in files]
