"""Atomic output folders: complete, or not at all.

`atomic_dir(final)` yields a fresh temporary folder beside `final` (same filesystem);
on success it replaces `final` in one rename (an existing `final` is moved aside first
and removed after), on any error or interrupt (including SIGINT/SIGTERM) the temporary
folder is deleted and `final` is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hqc.errors import HqcError


class OutputError(HqcError):
    """The output folder cannot be created or written."""


def _normalize_modes(root: Path, umask: int) -> None:
    """Files written through mkstemp are 0600; give the output ordinary permissions."""
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o777 & ~umask)
        for f in filenames:
            p = os.path.join(dirpath, f)
            exec_bit = os.stat(p).st_mode & 0o100
            os.chmod(p, (0o777 if exec_bit else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` (same filesystem) to write to; renamed onto `path`
    when the block succeeds, deleted on any error or interrupt (`path` is left as it was)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8, newlines as given) to `path` through `atomic_file`."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def _raise_interrupt(signum, frame):  # pragma: no cover - signal path
    raise KeyboardInterrupt


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    umask = 0o022
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the output is an ordinary folder
    except OSError as exc:
        raise OutputError(f"{final}: cannot create the output folder ({exc.strerror or exc})") from None
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not in the main thread
        old_term = None
    try:
        yield tmp
        _normalize_modes(tmp, umask)
        backup = None
        if final.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=parent))
            os.rmdir(backup)
            os.replace(final, backup)
        try:
            os.replace(tmp, final)
        except OSError as exc:
            if backup is not None:
                os.replace(backup, final)
            raise OutputError(f"{final}: cannot move the finished output into place ({exc.strerror or exc})") from None
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (28, 122):  # ENOSPC, EDQUOT
            raise OutputError(f"{final}: no space left on the device while writing the output") from None
        raise OutputError(f"{final}: cannot write the output ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
