"""Atomic file writes (temp file in the same folder + fsync + rename) and JSON helpers (internal)."""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _owner() -> str:
    """``host-pid`` of this process, written into temporary names so a later writer can tell a dead
    writer's leftover from a live one's file."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _sweep_dead_temps(path: Path) -> None:
    """Delete the temporary files a killed writer left beside ``path`` (``.NAME.host-pid.*.tmp`` whose
    process on this host is gone). Files of live processes and of other hosts are left alone."""
    host = socket.gethostname()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{glob.escape(host)}-*.tmp"):
        pid_text = tmp.name[len(f".{path.name}.{host}-") :].split(".", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:  # the writer is gone: its file can never be completed
            tmp.unlink(missing_ok=True)
        except (PermissionError, OverflowError):  # alive under another user, or not a pid: keep
            continue


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    A crash leaves either the old file or the new one, never a half-written file under the final name;
    the hidden temporary file a killed writer leaves is deleted by the next write to the same path.
    A symlink at ``path`` is replaced itself; the file it points to is never written. With ``overwrite``
    False the new file is linked in only if nothing exists at ``path`` at that moment (else
    :class:`FileExistsError`): of two writers racing for one new path, the second fails cleanly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp_path, path)
        else:
            os.link(tmp_path, path)  # atomic, and fails if `path` exists (a file, a link, a dangling link)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
