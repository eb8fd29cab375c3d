"""Channel-file formats: detection from extension and header bytes, and the content checks of ``H``
shared by every reader (:mod:`mimofm.channels.io` for imports, :mod:`mimofm.channels.store` for site
files).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from mimofm.core.validation import MimofmInputError

__all__ = ["GAIN_FLOOR_DB", "SUPPORTED_EXTENSIONS", "check_h_array", "detect_format", "file_error"]

SUPPORTED_EXTENSIONS = (".h5", ".hdf5", ".npz", ".npy", ".mat")

# Imported channels with a gain ‖h‖² below this (dB) are refused: no radio link loses that much (free-space
# loss at 100 GHz over 100 km is 172 dB), so such values are wrong units or numbers scaled towards
# underflow, and no SNR setting makes sense of them.
GAIN_FLOOR_DB = -300.0


def file_error(path: Path, msg: str) -> MimofmInputError:
    """The error for a problem ``msg`` with the channel file ``path`` (names the file)."""
    return MimofmInputError(f"channel file {str(path)!r}: {msg}")


# ---------------------------------------------------------------------------------------------
# format detection

_HDF5_SIG = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    """HDF5 signature at offset 0, 512, 1024, ... (MATLAB v7.3 files have a 512-byte user block)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        off = 0
        while off + 8 <= size:
            f.seek(off)
            if f.read(8) == _HDF5_SIG:
                return True
            off = 512 if off == 0 else off * 2
    return False


def detect_format(path: str | Path) -> str:
    """The format of a channel file, from its extension and header bytes.

    One of ``"mimofm-site"``, ``"hdf5"``, ``"npz"``, ``"npy"``, ``"mat-v5"``, ``"mat-v7.3"``.
    Raises :class:`MimofmInputError` for missing, empty or unsupported files.
    """
    path = Path(path)
    if not path.exists():
        raise MimofmInputError(f"`--data` file {str(path)!r} does not exist")
    if not path.is_file():
        raise file_error(path, "is not a regular file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise file_error(
            path, f"unsupported extension {path.suffix!r}; expected one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if path.stat().st_size == 0:
        raise file_error(path, "is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(128)
    if suffix == ".npz":
        if head[:4] != b"PK\x03\x04":
            raise file_error(path, "is not a readable .npz archive (no zip header)")
        return "npz"
    if suffix == ".npy":
        if head[:6] != b"\x93NUMPY":
            raise file_error(path, "is not a readable .npy file (no NumPy header)")
        return "npy"
    if suffix == ".mat":
        if head.startswith(b"MATLAB 7.3") or _is_hdf5(path):
            return "mat-v7.3"
        if head.startswith(b"MATLAB 5.0"):
            return "mat-v5"
        raise file_error(
            path,
            "is not a MATLAB v5/v7 or v7.3 MAT-file (MATLAB v4 and other files are not supported; "
            "save with `save(file, 'H', '-v7')` or `'-v7.3'`)",
        )
    # .h5 / .hdf5
    if not _is_hdf5(path):
        raise file_error(path, "is not an HDF5 file (no HDF5 signature)")
    if head.startswith(b"MATLAB 7.3"):
        return "mat-v7.3"
    try:
        with h5py.File(path, "r") as f:
            attrs = set(f.attrs.keys())
    except OSError as e:
        raise file_error(path, f"is not a readable HDF5 file (truncated or corrupt?): {e}") from None
    if "mimofm_partial_schema" in attrs:
        raise file_error(
            path,
            "is an unfinished partial site file (its generation was interrupted); resume the "
            "generator or finalize it with mimofm.channels.store.PartialSite",
        )
    return "mimofm-site" if "mimofm_site_schema" in attrs else "hdf5"


def check_h_array(path: Path, h: np.ndarray, row0: int = 0) -> None:
    """Content checks of ``H`` ``[num_positions, num_bs_ant]`` (or of a block of its rows starting at row
    ``row0``): complex, 2-D, non-empty, finite, no zero rows."""
    if not np.iscomplexobj(h):
        raise file_error(path, f"`H` must be complex, got dtype {h.dtype}")
    if h.ndim != 2:
        raise file_error(path, f"`H` must have shape [num_positions, num_bs_ant], got {list(h.shape)}")
    if min(h.shape) == 0:
        raise file_error(path, f"`H` is empty: shape {list(h.shape)}")
    finite = np.isfinite(h)
    if not finite.all():
        raise file_error(path, f"`H` has {int((~finite).sum())} NaN/Inf entries")
    zero = ~np.abs(h).any(axis=1)
    if zero.any():
        raise file_error(
            path,
            f"`H` has {int(zero.sum())} all-zero rows (first: {row0 + int(np.argmax(zero))}); remove them",
        )
