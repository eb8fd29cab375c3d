"""Array layouts of imported channel files: from what users hold to ``H [num_positions, num_bs_ant]``.

Channel arrays come in many shapes. An importer names each axis with one label, then reduces the array:

=========  ==================================================================================================
label      meaning and what happens to the axis
=========  ==================================================================================================
``n``      positions (UEs); several ``n`` axes are flattened, in array order, into one position axis
``ntx``    BS antennas; several are flattened in array order (e.g. the rows and columns of a UPA)
``sc``     subcarriers / frequencies (at most one): reduced by ``--subcarrier`` — an index, ``mean``
           (the average complex response over the band, the default) or ``all`` (every subcarrier a
           position)
``path``   propagation paths: summed, which gives the narrowband channel at the carrier
``t``      time steps / OFDM symbols: must have size 1 (mark it ``n`` to read each as a position)
``nrx``    UE antennas: must have size 1 (mimofm serves single-antenna UEs; mark it ``n`` to read each UE
           antenna as a position)
``1``      any other axis that must have size 1 (e.g. one transmitter)
=========  ==================================================================================================

The labels come from ``--layout`` or from :func:`detect_layout`, which knows these layouts (the docs page
docs/byo-channels.md has a worked example of each):

* ``[n, N_t]`` — positions × antennas (fewer rows than columns is refused as transposed unless the
  file's ``los``/``positions``/``split`` have one entry per row);
* ``[B, K, N_t]`` — batches of users (flattened) and ``[n, N_t, subcarriers]``, told apart by their
  sizes, or by ``--subcarrier``;
* DeepMIMO v4 ``[users, rx ant = 1, tx ant, subcarriers]`` (``Dataset.channel``; the last axis holds
  paths for time-domain channels: ``--layout n,nrx,ntx,path``);
* Sionna: PHY (TR 38.901, CDL, ...) ``a`` ``[batch, num_rx, num_rx_ant, num_tx, num_tx_ant, num_paths,
  num_time_steps]`` and ``cir_to_ofdm_channel`` ``[batch, num_rx, num_rx_ant, num_tx, num_tx_ant,
  num_ofdm_symbols, fft_size]``; RT ``Paths.cir()`` ``[num_rx, num_rx_ant, num_tx, num_tx_ant, num_paths,
  num_time_steps]`` and ``Paths.cfr()`` ``[num_rx, num_rx_ant, num_tx, num_tx_ant, num_time_steps,
  num_subcarriers]``. The path coefficients are told from frequency responses by the variable name
  (``a``, ``cir`` vs ``h_freq``, ``h_f``, ``cfr``) or a ``tau`` array next to them. Downlink (single-antenna
  receivers) or uplink (single-antenna transmitters, read by reciprocity ``H_dl = H_ulᵀ``, no conjugate);
* QuaDRiGa / MATLAB (``.mat`` files only): ``[N_r = 1, N_t, n]`` and ``qd_channel.fr()`` /
  ``coeff`` ``[N_r = 1, N_t, carriers | paths, snapshots]``.

:class:`ReadAs` records the choice; its :meth:`ReadAs.line` is the one log line that explains it, e.g.
``read 'channel' [24, 1, 16, 8] as DeepMIMO v4 [users, rx, tx, subcarriers]: subcarrier mean over 8 ->
[24, 16]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mimofm.channels.formats import file_error
from mimofm.channels.limits import parse_memory
from mimofm.core.validation import MimofmInputError

__all__ = [
    "CHANNEL_NAMES",
    "LABELS",
    "ImportOptions",
    "Layout",
    "LayoutPlan",
    "ReadAs",
    "apply_layout",
    "detect_layout",
    "parse_layout",
    "parse_subcarrier",
    "plan_layout",
    "reduce_block",
]

LABELS = {
    "n": "positions (several are flattened in order)",
    "ntx": "BS antennas (several are flattened in order)",
    "sc": "subcarriers, reduced by --subcarrier",
    "path": "paths, summed",
    "t": "time steps, size 1",
    "nrx": "UE antennas, size 1",
    "1": "another axis of size 1",
}

# names read as the channel when `--var` is not given, in this order of preference (`H` first: the native
# name); a file holding several of them (other than `H`) is refused as ambiguous
CHANNEL_NAMES = ("H", "channel", "channels", "h_freq", "h_f", "cfr", "a", "cir", "coeff", "h")
_CIR_NAMES = ("a", "cir", "coeff")  # path coefficients: the paths are summed
_FREQ_NAMES = ("h_freq", "h_f", "cfr")  # frequency responses: the subcarriers are reduced

# [B, K, N_t] is told from [n, N_t, subcarriers] by K <= this (few users, more antennas)
_MAX_USERS_PER_BATCH = 16


@dataclass(frozen=True)
class ImportOptions:
    """How to read an imported channel file (the ``--var``, ``--subcarrier``, ``--layout`` and
    ``--max-memory`` flags).

    ``var``: the array holding the channel (default: ``H``, else one of :data:`CHANNEL_NAMES`; an HDF5 path
    like ``group/H`` is accepted). ``subcarrier``: an index, ``"mean"`` or ``"all"`` (default ``"mean"``
    when there is a subcarrier axis). ``layout``: comma-separated axis labels (see the module docstring),
    one per axis, instead of auto-detection. ``max_memory``: the memory budget of the reader, bytes or a size
    such as ``"4G"`` (stored as bytes; default None: half the available memory, see
    :mod:`mimofm.channels.limits`).
    """

    var: str | None = None
    subcarrier: str | int | None = None
    layout: str | None = None
    max_memory: str | int | None = None

    def __post_init__(self) -> None:
        if self.var is not None and (not isinstance(self.var, str) or not self.var.strip()):
            raise MimofmInputError(f"`--var` must be a non-empty name, got {self.var!r}")
        object.__setattr__(self, "subcarrier", parse_subcarrier(self.subcarrier))
        if self.layout is not None and (not isinstance(self.layout, str) or not self.layout.strip()):
            raise MimofmInputError(f"`--layout` must be comma-separated axis labels, got {self.layout!r}")
        if self.max_memory is not None:
            object.__setattr__(self, "max_memory", parse_memory(self.max_memory))

    @property
    def given(self) -> bool:
        """Whether any reading option (``var``, ``subcarrier``, ``layout``) differs from the default."""
        return any(v is not None for v in (self.var, self.subcarrier, self.layout))

    def reading(self) -> dict:
        """The options that say how the array was read (not the memory budget), those given."""
        return {
            k: v
            for k, v in (("var", self.var), ("subcarrier", self.subcarrier), ("layout", self.layout))
            if v is not None
        }


@dataclass(frozen=True)
class Layout:
    """One label per axis (:data:`LABELS`), the axes' names for messages, and what the layout is."""

    labels: tuple[str, ...]
    names: tuple[str, ...]
    what: str
    note: str = ""


@dataclass(frozen=True)
class ReadAs:
    """How an imported array became ``H``: the variable, its shape, the layout, the reduction steps and the
    result's shape ``[num_positions, num_bs_ant]``."""

    var: str
    source_shape: tuple[int, ...]
    labels: tuple[str, ...]
    what: str
    steps: tuple[str, ...]
    shape: tuple[int, int]
    note: str = ""

    def line(self) -> str:
        """The one log line, e.g. ``read 'channel' [24, 1, 16, 8] as DeepMIMO v4 [users, rx, tx,
        subcarriers]: subcarrier mean over 8 -> [24, 16]``."""
        text = f"read {self.var!r} {list(self.source_shape)} as {self.what}"
        if self.steps:
            text += ": " + "; ".join(self.steps) + f" -> {list(self.shape)}"
        elif tuple(self.source_shape) != tuple(self.shape):
            text += f" -> {list(self.shape)}"
        if self.note:
            text += f" ({self.note})"
        return text

    def to_dict(self) -> dict:
        """JSON-able form (lists for tuples), with the log line."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {**d, "layout": ",".join(self.labels), "line": self.line()}


def parse_subcarrier(value: str | int | None) -> str | int | None:
    """``--subcarrier``: None, an index ``>= 0`` (int or digits), ``"mean"`` or ``"all"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise MimofmInputError(f"`--subcarrier` must be an index, `all` or `mean`, got {value!r}")
    if isinstance(value, (int, np.integer)):
        index = int(value)
    else:
        text = str(value).strip().lower()
        if text in ("mean", "all"):
            return text
        try:
            index = int(text)
        except ValueError:
            raise MimofmInputError(
                f"`--subcarrier` must be an index (0, 1, ...), `all` or `mean`, got {value!r}"
            ) from None
    if index < 0:
        raise MimofmInputError(f"`--subcarrier` index must be >= 0, got {index}")
    return index


def parse_layout(path: Path, text: str, var: str, shape: tuple[int, ...]) -> Layout:
    """``--layout`` (comma-separated labels, one per axis of ``var``) as a :class:`Layout`."""
    labels = tuple(p.strip().lower() for p in text.split(","))
    bad = [p for p in labels if p not in LABELS]
    if bad:
        valid = "; ".join(f"{k} = {v}" for k, v in LABELS.items())
        raise file_error(
            path, f"`--layout` has unknown axis label(s) {', '.join(map(repr, bad))}; valid: {valid}"
        )
    if len(labels) != len(shape):
        raise file_error(
            path,
            f"`--layout {text}` names {len(labels)} axes but {var!r} has {len(shape)}: {list(shape)}",
        )
    if "n" not in labels or "ntx" not in labels:
        raise file_error(
            path, f"`--layout {text}` needs at least one `n` (positions) and one `ntx` (BS antennas) axis"
        )
    if labels.count("sc") > 1:
        raise file_error(path, f"`--layout {text}` has more than one `sc` axis")
    names = tuple(f"axis {i}" for i in range(len(labels)))
    return Layout(labels, names, f"--layout {','.join(labels)}")


# ---------------------------------------------------------------------------------------------
# auto-detection


def _ambiguous(var: str, shape: tuple[int, ...], readings: str, alternatives: list[str]) -> str:
    opts = " or ".join(f"--layout {a}" for a in alternatives)
    return f"{var!r} {list(shape)} is ambiguous: {readings}; pass {opts} (see docs/byo-channels.md)"


def detect_layout(
    path: Path,
    var: str,
    shape: tuple[int, ...],
    *,
    matlab: bool = False,
    has_tau: bool = False,
    subcarrier_given: bool = False,
    aux_lengths: tuple[int, ...] = (),
) -> Layout:
    """The layout of the channel array ``var`` of shape ``shape`` (see the module docstring).

    ``matlab``: the file is a MATLAB ``.mat`` (QuaDRiGa layouts apply). ``has_tau``: a ``tau`` array sits
    next to it (Sionna path coefficients). ``subcarrier_given``: ``--subcarrier`` was passed (so a 3-D
    array has a subcarrier axis). ``aux_lengths``: lengths of the file's ``los``/``positions``/``split``
    (they tell a position axis). Raises :class:`MimofmInputError` naming the fix for what it cannot tell.
    """
    nd, low = len(shape), var.lower()
    if nd == 2:
        rows, cols = shape
        if rows >= cols or rows in aux_lengths:
            return Layout(("n", "ntx"), ("positions", "antennas"), "[positions, antennas]")
        raise file_error(
            path,
            f"{var!r} looks transposed: {rows} rows × {cols} columns, fewer positions than BS antennas "
            f"(H is [num_positions, num_bs_ant]); pass --layout ntx,n to read it transposed "
            f"({cols} positions × {rows} antennas), --layout n,ntx if it really holds {rows} positions of "
            f"{cols} antennas, or save it transposed",
        )
    if nd == 3:
        a, b, c = shape
        if matlab and a == 1:
            return Layout(
                ("nrx", "ntx", "n"),
                ("rx antennas", "tx antennas", "positions"),
                "QuaDRiGa/MATLAB [rx, tx, positions]",
            )
        if matlab and not subcarrier_given:
            raise file_error(
                path,
                _ambiguous(
                    var,
                    shape,
                    f"QuaDRiGa [N_r, N_t, n] with {a} UE antennas (each read as positions), [batch, users, "
                    "antennas] or [positions, antennas, subcarriers]",
                    ["n,ntx,n", "n,n,ntx", "n,ntx,sc"],
                ),
            )
        if subcarrier_given:
            return Layout(
                ("n", "ntx", "sc"),
                ("positions", "antennas", "subcarriers"),
                "[positions, antennas, subcarriers]",
            )
        if c > b and b <= _MAX_USERS_PER_BATCH:
            return Layout(
                ("n", "n", "ntx"),
                ("batch", "users", "antennas"),
                "[batch, users, antennas]",
                note="if axis 1 holds antennas and axis 2 subcarriers: --layout n,ntx,sc or --subcarrier",
            )
        if c < b:
            return Layout(
                ("n", "ntx", "sc"),
                ("positions", "antennas", "subcarriers"),
                "[positions, antennas, subcarriers]",
                note="if it is [batch, users, antennas]: --layout n,n,ntx",
            )
        raise file_error(
            path,
            _ambiguous(
                var,
                shape,
                f"[batch, users, antennas] ({b} users of {c} antennas) or [positions, antennas, "
                f"subcarriers] ({b} antennas, {c} subcarriers)",
                ["n,n,ntx", "n,ntx,sc"],
            ),
        )
    if nd == 4:
        a, b = shape[:2]
        if matlab and a == 1:
            paths = low in _CIR_NAMES
            return Layout(
                ("nrx", "ntx", "path" if paths else "sc", "n"),
                ("rx antennas", "tx antennas", "paths" if paths else "carriers", "snapshots"),
                f"QuaDRiGa [rx, tx, {'paths' if paths else 'carriers'}, snapshots]",
            )
        if b == 1:
            paths = low in _CIR_NAMES
            last = "paths" if paths else "subcarriers"
            return Layout(
                ("n", "nrx", "ntx", "path" if paths else "sc"),
                ("users", "rx antennas", "tx antennas", last),
                f"DeepMIMO v4 [users, rx, tx, {last}]",
                note="" if paths else "time-domain DeepMIMO: --layout n,nrx,ntx,path",
            )
        raise file_error(
            path,
            f"{var!r} {list(shape)}: no known 4-D layout (DeepMIMO v4 is [users, 1, tx antennas, "
            "subcarriers], QuaDRiGa in a .mat [1, tx antennas, carriers, snapshots]); axis 1 has "
            f"{b} entries (UE antennas?); pass --layout (e.g. n,n,ntx,sc to read each UE antenna as a "
            "position)",
        )
    if nd in (6, 7):
        return _sionna(path, var, shape, has_tau, subcarrier_given)
    raise file_error(
        path,
        f"{var!r} {list(shape)}: no known {nd}-D layout; H must be [num_positions, num_bs_ant], or pass "
        "--layout with one label per axis (n, ntx, sc, path, t, nrx, 1; see docs/byo-channels.md)",
    )


def _sionna(path: Path, var: str, shape: tuple[int, ...], has_tau: bool, subcarrier_given: bool) -> Layout:
    batch = len(shape) == 7
    rx_ant, tx_ant = shape[len(shape) - 5], shape[len(shape) - 3]  # num_rx_ant, num_tx_ant
    low = var.lower()
    if low in _CIR_NAMES or (has_tau and low not in _FREQ_NAMES):
        tail, tail_names, kind = ("path", "t"), ("num_paths", "num_time_steps"), "CIR a"
    elif low in _FREQ_NAMES or subcarrier_given:
        tail, tail_names, kind = ("t", "sc"), ("num_time_steps", "num_subcarriers"), "frequency response"
    else:
        lead = "n," if batch else ""
        raise file_error(
            path,
            f"{var!r} {list(shape)} looks like a Sionna channel, but are its last two axes [num_paths, "
            "num_time_steps] (Paths.cir, a TR 38.901/CDL `a`) or [num_time_steps, num_subcarriers] "
            "(cir_to_ofdm_channel, Paths.cfr)? Name it `a` / `h_freq` (or save `tau` next to `a`), or pass "
            f"--layout {lead}n,nrx,1,ntx,path,t or --layout {lead}n,nrx,1,ntx,t,sc",
        )
    head_names = (("batch",) if batch else ()) + ("num_rx", "num_rx_ant", "num_tx", "num_tx_ant")
    src = "Sionna PHY" if batch else "Sionna RT"
    dims = ", ".join(head_names + tail_names)
    if rx_ant == 1:  # downlink: single-antenna receivers are the UEs, the transmitter is the BS
        head = ("n",) if batch else ()
        labels = head + ("n", "nrx", "1", "ntx") + tail
        return Layout(labels, head_names + tail_names, f"{src} {kind} [{dims}] (downlink)")
    if tx_ant == 1:  # uplink: the UEs transmit, the BS receives; reciprocity gives the downlink row
        head = ("n",) if batch else ()
        labels = head + ("1", "ntx", "n", "nrx") + tail
        return Layout(
            labels,
            head_names + tail_names,
            f"{src} {kind} [{dims}] (uplink: the BS receives; reciprocity H_dl = H_ul^T, not conjugated)",
        )
    raise file_error(
        path,
        f"{var!r} {list(shape)}: both ends have several antennas (num_rx_ant = {rx_ant}, num_tx_ant = "
        f"{tx_ant}); mimofm serves single-antenna UEs: keep one UE antenna, or pass --layout marking the UE "
        "antenna axis `n` to read each UE antenna as a position",
    )


# ---------------------------------------------------------------------------------------------
# reduction


def _size_one(path: Path, label: str, name: str, size: int) -> MimofmInputError:
    if label == "nrx":
        fix = (
            f"the UEs have {size} antennas ({name}); mimofm serves single-antenna UEs: mark that axis `n` in "
            "--layout to read each UE antenna as a position, or keep one antenna"
        )
    elif label == "t":
        fix = (
            f"{size} time steps ({name}); mimofm reads one snapshot per position: mark that axis `n` in "
            "--layout to read each time step as a position, or save one time step"
        )
    else:
        fix = (
            f"{name} has {size} entries where 1 is expected (several transmitters or receivers?); keep "
            "one, or mark that axis `n` in --layout to read each as positions"
        )
    return file_error(path, fix)


@dataclass(frozen=True)
class LayoutPlan:
    """How an array of a given shape is reduced to ``H``: the checked layout, the explanation (``read_as``),
    the sizes of the position axes (``position_shape``), the subcarrier repeat and the block axis.

    The array can be reduced in blocks along ``block_axis`` (its first position axis): a block of ``b``
    entries of that axis gives ``b * rows_per_entry`` consecutive rows of ``H`` (:func:`reduce_block`).
    """

    layout: Layout
    subcarrier: str | int | None
    read_as: ReadAs
    position_shape: tuple[int, ...]
    repeat: int
    block_axis: int
    rows_per_entry: int


def plan_layout(
    path: Path, var: str, shape: tuple[int, ...], layout: Layout, subcarrier: str | int | None
) -> LayoutPlan:
    """Check ``layout`` against the array's ``shape`` and explain the reduction, reading no data (see
    :func:`apply_layout`)."""
    labels, names, shape = list(layout.labels), list(layout.names), tuple(int(s) for s in shape)
    for lab, name, size in zip(labels, names, shape):
        if lab in ("nrx", "t", "1") and size != 1:
            raise _size_one(path, lab, name, size)
    if subcarrier is not None and "sc" not in labels:
        raise file_error(
            path,
            f"`--subcarrier {subcarrier}` given, but {var!r} {list(shape)} read as {layout.what} has no "
            "subcarrier axis; drop --subcarrier (or mark the axis `sc` in --layout)",
        )
    steps: list[str] = []
    paths = [i for i, lab in enumerate(labels) if lab == "path"]
    if paths:
        steps.append(f"sum over {math.prod(shape[i] for i in paths)} paths")
    repeat = 1
    if "sc" in labels:
        count = shape[labels.index("sc")]
        mode = "mean" if subcarrier is None else subcarrier
        if mode == "mean":
            steps.append(f"subcarrier mean over {count}")
        elif mode == "all":
            repeat = count
            steps.append(f"all {count} subcarriers as positions")
        else:
            if mode >= count:
                raise file_error(
                    path,
                    f"`--subcarrier {mode}` is out of range: {var!r} has {count} subcarriers "
                    f"(0..{count - 1})",
                )
            steps.append(f"subcarrier {mode} of {count}")
    pos = [i for i, lab in enumerate(labels) if lab == "n"]
    ant = [i for i, lab in enumerate(labels) if lab == "ntx"]
    position_shape = tuple(shape[i] for i in pos)
    if len(pos) > 1:
        steps.append("positions = " + " × ".join(f"{names[i]} {shape[i]}" for i in pos))
    if len(ant) > 1:
        steps.append("antennas = " + " × ".join(f"{names[i]} {shape[i]}" for i in ant))
    if layout.labels == ("ntx", "n"):
        steps.append("transposed")
    num_positions = math.prod(position_shape) * repeat
    num_ant = math.prod(shape[i] for i in ant)
    read_as = ReadAs(
        var=var,
        source_shape=shape,
        labels=tuple(layout.labels),
        what=layout.what,
        steps=tuple(steps),
        shape=(int(num_positions), int(num_ant)),
        note=layout.note,
    )
    block_axis = pos[0]
    rows_per_entry = num_positions // shape[block_axis]
    return LayoutPlan(layout, subcarrier, read_as, position_shape, repeat, block_axis, rows_per_entry)


def reduce_block(plan: LayoutPlan, a: np.ndarray) -> np.ndarray:
    """Reduce ``a`` — the whole array, or a block of it along ``plan.block_axis`` — to rows of ``H``
    ``[rows, num_bs_ant]`` (complex64 for a complex64 input, else complex128)."""
    labels = list(plan.layout.labels)
    wide = np.complex64 if a.dtype == np.complex64 else np.complex128
    paths = [i for i, lab in enumerate(labels) if lab == "path"]
    if paths:
        a = a.sum(axis=tuple(paths), dtype=np.complex128).astype(wide)
        labels = [lab for i, lab in enumerate(labels) if i not in paths]
    if "sc" in labels:
        i = labels.index("sc")
        mode = "mean" if plan.subcarrier is None else plan.subcarrier
        if mode == "mean":
            a = a.mean(axis=i, dtype=np.complex128).astype(wide)
            del labels[i]
        elif mode == "all":
            labels[i] = "n_sc"  # flattened after the other position axes
        else:
            a = np.take(a, mode, axis=i)
            del labels[i]
    keep = [i for i, lab in enumerate(labels) if lab in ("n", "ntx", "n_sc")]
    drop = tuple(i for i in range(len(labels)) if i not in keep)
    a = np.squeeze(a, axis=drop)  # size-1 axes (nrx, t, 1) dropped
    labels = [labels[i] for i in keep]
    pos = [i for i, lab in enumerate(labels) if lab == "n"] + [
        i for i, lab in enumerate(labels) if lab == "n_sc"
    ]
    ant = [i for i, lab in enumerate(labels) if lab == "ntx"]
    order = pos + ant
    if order != list(range(len(order))):
        a = np.transpose(a, order)  # [..., ntx, ..., n, ...] -> [n..., ntx...]
    # [n..., ntx...] -> [rows, antennas]
    return np.ascontiguousarray(a, dtype=wide).reshape(-1, plan.read_as.shape[1])


def apply_layout(
    path: Path, var: str, a: np.ndarray, layout: Layout, subcarrier: str | int | None
) -> tuple[np.ndarray, ReadAs, tuple[int, ...], int]:
    """Reduce ``a`` to ``H [num_positions, num_bs_ant]`` by ``layout`` (see the module docstring).

    Returns ``(h, read_as, position_shape, repeat)``: ``position_shape`` the sizes of the ``n`` axes before
    flattening (the file's ``los``/``positions``/``split`` follow them) and ``repeat`` the number of
    subcarriers each position was expanded into (``--subcarrier all``; else 1).
    """
    plan = plan_layout(path, var, tuple(a.shape), layout, subcarrier)
    return reduce_block(plan, a), plan.read_as, plan.position_shape, plan.repeat
