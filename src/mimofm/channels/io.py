"""Channel files: load and save single-antenna-UE channel sets.

``.npz`` form (documented in docs/data.md): ``H`` complex ``[num_positions, num_bs_ant]`` (row n is
the channel from the BS antennas to the UE at position n: ``y_n = H[n] @ x``, raw gains with path
loss, or normalized gains), optional ``los`` ``[num_positions]`` (bool/0-1) and ``positions``
``[num_positions, 2 or 3]`` (metres), optional ``meta_json`` (a JSON string). Files are read with
``allow_pickle=False``: object arrays are rejected.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mimofm._io import atomic_path
from mimofm.core.validation import MimofmInputError

__all__ = ["ChannelSet", "load_channels", "save_channels_npz"]


@dataclass
class ChannelSet:
    """One site's channels: ``h`` complex ``[num_positions, num_bs_ant]``, ``los`` ``[num_positions]`` bool or None,
    ``positions`` ``[num_positions, d]`` or None, ``meta`` dict."""

    name: str
    h: torch.Tensor
    los: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_positions(self) -> int:
        return self.h.shape[0]

    @property
    def num_bs_ant(self) -> int:
        return self.h.shape[1]


def _bad(path: Path, msg: str) -> MimofmInputError:
    return MimofmInputError(f"channel file {str(path)!r}: {msg}")


def load_channels(path: str | Path, name: str | None = None) -> ChannelSet:
    """Load a channel file (``.npz``); validates dtype, shape, finiteness and non-zero users."""
    path = Path(path)
    if not path.exists():
        raise MimofmInputError(f"`--data` file {str(path)!r} does not exist")
    if path.suffix.lower() != ".npz":
        raise _bad(path, f"unsupported extension {path.suffix!r}; expected .npz with an `H` array")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise _bad(path, "is not a readable .npz archive (no zip header)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle
        raise _bad(path, f"cannot be read without pickle ({e}); store plain numeric arrays") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise _bad(path, f"is not a readable .npz archive ({e})") from None
    if "H" not in arrays:
        raise _bad(path, f"has no `H` array (found: {', '.join(arrays) or 'nothing'})")
    h = arrays["H"]
    if not np.iscomplexobj(h):
        raise _bad(path, f"`H` must be complex, got dtype {h.dtype}")
    if h.ndim != 2:
        raise _bad(path, f"`H` must have shape [num_positions, num_bs_ant], got {list(h.shape)}")
    if min(h.shape) == 0:
        raise _bad(path, f"`H` is empty: shape {list(h.shape)}")
    if not np.isfinite(h).all():
        raise _bad(path, f"`H` has {int((~np.isfinite(h)).sum())} NaN/Inf entries")
    zero = ~np.abs(h).any(axis=1)
    if zero.any():
        raise _bad(path, f"`H` has {int(zero.sum())} all-zero rows (first: {int(np.argmax(zero))}); remove them")
    n = h.shape[0]
    los = arrays.get("los")
    if los is not None:
        if los.shape != (n,) or not (los.dtype == bool or np.issubdtype(los.dtype, np.integer)):
            raise _bad(path, f"`los` must be bool/int of shape [{n}], got {los.dtype} {list(los.shape)}")
        los = torch.from_numpy(los.astype(bool))
    pos = arrays.get("positions")
    if pos is not None:
        if pos.ndim != 2 or pos.shape[0] != n or pos.shape[1] not in (2, 3) or not np.issubdtype(pos.dtype, np.floating):
            raise _bad(path, f"`positions` must be float of shape [{n}, 2|3], got {pos.dtype} {list(pos.shape)}")
        pos = torch.from_numpy(pos.astype(np.float64))
    meta = {}
    if "meta_json" in arrays:
        try:
            meta = json.loads(str(arrays["meta_json"]))
        except json.JSONDecodeError as e:
            raise _bad(path, f"`meta_json` is not valid JSON ({e})") from None
    h_t = torch.from_numpy(h.astype(np.complex64 if h.dtype == np.complex64 else np.complex128))
    return ChannelSet(name=name or meta.get("name") or path.stem, h=h_t, los=los, positions=pos, meta=meta)


def save_channels_npz(path: str | Path, cs: ChannelSet) -> None:
    """Write a channel set atomically in the documented ``.npz`` form."""
    arrays = {"H": cs.h.numpy()}
    if cs.los is not None:
        arrays["los"] = cs.los.numpy().astype(bool)
    if cs.positions is not None:
        arrays["positions"] = cs.positions.numpy()
    arrays["meta_json"] = np.array(json.dumps({"name": cs.name, **cs.meta}, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
