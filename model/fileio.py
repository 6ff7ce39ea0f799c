"""The project's one atomic file writer (standard library only).

Every file the project writes (checkpoints, dataset lists, GeoJSON, GeoPackages, GeoTIFFs,
batch part files, plugin zips) goes through :func:`atomic_path`: the content is written
to a temporary file beside the target and moved over it with :func:`os.replace`, so a
reader sees the old file or the complete new one, never half a file. On any error,
including ``KeyboardInterrupt``, the temporary file and its sidecars are removed.

A process killed with SIGKILL cannot clean up; its temporary file carries the writer's
process id in its name (``.NAME.<pid>-<random>.smgeo-tmp.EXT``), and
:func:`sweep_stale_temps` removes those whose writer is gone. Writers of long-lived
outputs (batch GeoPackages) call it before writing.

``smgeo_geo`` imports this module too; importing it does not import torch.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Callable, Iterator

TEMP_MARK = ".smgeo-tmp"
# files a writer may create next to its output (SQLite journals, GDAL statistics)
SIDECARS = ("", "-journal", "-wal", "-shm", ".aux.xml")


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:10]}{TEMP_MARK}{target.suffix}")


def _remove_with_sidecars(path: Path) -> None:
    for suffix in SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, error: Callable[[str], Exception] = FileNotFoundError) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` (same suffix; the file is not created).

    When the block succeeds the temporary file replaces ``path`` (made readable like a
    normally created file); when it raises, the temporary file and its sidecars are
    removed and the error propagates. A missing destination folder raises
    ``error(message)`` before anything runs.
    """
    target = Path(os.path.abspath(os.fspath(path)))
    if not target.parent.is_dir():
        raise error(f"{path}: folder {target.parent} does not exist")
    tmp = _temp_name(target)
    try:
        yield tmp
        if not tmp.exists():
            raise error(f"{path}: the writer produced no file")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        _remove_with_sidecars(tmp)


def write_bytes(path: str | os.PathLike, data: bytes, error: Callable[[str], Exception] = FileNotFoundError) -> None:
    """Atomically write ``data`` to ``path`` (flushed to disk before the rename)."""
    with atomic_path(path, error) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str, error: Callable[[str], Exception] = FileNotFoundError) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_bytes(path, text.encode("utf-8"), error)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of earlier, killed writes to ``path`` (and their sidecars).

    Only files named by :func:`atomic_path` for this very target whose writing process
    no longer runs are removed; a write in progress in a live process is left alone.
    Returns the removed temporary files.
    """
    target = Path(os.path.abspath(os.fspath(path)))
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)-[0-9a-f]+{re.escape(TEMP_MARK)}"
                         rf"{re.escape(target.suffix)}$")
    removed = []
    for entry in target.parent.iterdir():
        m = pattern.match(entry.name)
        if m and not _alive(int(m.group(1))):
            _remove_with_sidecars(entry)
            removed.append(entry)
    return removed
