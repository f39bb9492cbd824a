"""Every file rkgen writes goes through here: regular files only, atomically, never half-written.

A write goes to a temporary file with a unique name in the target's folder, is flushed and fsynced, and then
renamed over the target (:func:`os.replace`), so a reader sees the old file or the new one, never a part.  Before
that the target is looked at with :func:`os.lstat`: when it exists and is not a regular file (a symbolic link, a
folder, a named pipe, a device, a socket) nothing is written and :class:`~rkgen.errors.RkgenError` says so in one
line, since a rename would replace the link or the device node itself.  Any failure on the way (a full disk, a
read-only file system, a missing permission) removes the temporary file, leaves the target as it was, and becomes
one line ``PATH: cannot write: <reason>``.

A new file gets the mode an ordinary ``open`` gives it (0o666 less the umask); a replaced file keeps its mode, less
the umask bits (and never a set-id bit).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_text_atomic(folder / "a.txt", "one\\n")
>>> (folder / "a.txt").read_text()
'one\\n'
>>> (folder / "link.txt").symlink_to(folder / "a.txt")
>>> try:
...     write_text_atomic(folder / "link.txt", "two\\n")
... except RkgenError as exc:
...     print(str(exc).replace(str(folder), "FOLDER"))
FOLDER/link.txt is a symbolic link; rkgen writes only regular files (remove it or choose another path)
>>> (folder / "a.txt").read_text()
'one\\n'
>>> import shutil; shutil.rmtree(folder)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import RkgenError

__all__ = [
    "check_target",
    "open_atomic",
    "write_text_atomic",
    "write_bytes_atomic",
    "save_figure",
    "open_append",
    "cannot_write",
]

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def cannot_write(path: str | os.PathLike, exc: OSError) -> RkgenError:
    """The one-line error of a failed write: ``PATH: cannot write: <strerror>``."""
    return RkgenError(f"{os.fspath(path)}: cannot write: {exc.strerror or exc}")


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_target(path: str | os.PathLike) -> os.stat_result | None:
    """The target's :func:`os.lstat` when it is a regular file, None when it does not exist; anything else (a
    symbolic link, also one to a regular file, a folder, a FIFO, a device, a socket) is an :class:`RkgenError`."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise cannot_write(path, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise RkgenError(
            f"{os.fspath(path)} is {_kind(st.st_mode)}; rkgen writes only regular files "
            "(remove it or choose another path)"
        )
    return st


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask sets it: not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - systems without /proc
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def _mode(existing: os.stat_result | None) -> int:
    if existing is None:
        return 0o666 & ~_umask()
    return stat.S_IMODE(existing.st_mode) & 0o777 & ~_umask()


def _temporary(path: Path) -> tuple[int, Path]:
    """A new file with a unique name beside ``path`` (its folder made if missing), opened for writing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name[:180]  # the temporary name stays within NAME_MAX when the target's does
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = path.parent / f".{stem}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    raise FileExistsError(17, "no free temporary name", str(path.parent))  # pragma: no cover


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; a folder that cannot be opened or synced is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, text: bool = False, encoding: str = "utf-8") -> Iterator[IO]:
    """A file handle whose content replaces ``path`` when the ``with`` block ends without an error.

    Binary by default (for ``np.savez``, ``fig.savefig``); ``text=True`` gives a text handle with ``\\n`` line
    ends.  An error in the block, or in writing, removes the temporary file and leaves ``path`` as it was; an
    :class:`OSError` becomes one :class:`RkgenError` line."""
    path = Path(path)
    tmp: Path | None = None
    try:
        existing = check_target(path)
        fd, tmp = _temporary(path)
        try:
            fh = os.fdopen(fd, "w", encoding=encoding, newline="\n") if text else os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _mode(existing))
        check_target(path)  # again, just before the rename: nothing else may have taken the name meanwhile
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _sync_folder(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` (see :func:`open_atomic`)."""
    with open_atomic(path) as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` (``\\n`` line ends; see :func:`open_atomic`)."""
    with open_atomic(path, text=True, encoding=encoding) as fh:
        fh.write(text)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """``fig.savefig`` to ``path`` through :func:`open_atomic`; the format is the suffix's unless given."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix.lstrip(".").lower() or None
    if fmt is None:
        raise RkgenError(f"{path}: a figure file needs a suffix (.png, .pdf, .svg) or a format")
    with open_atomic(path) as fh:
        fig.savefig(fh, format=fmt, **kwargs)
    return path


def open_append(path: str | os.PathLike, encoding: str = "utf-8", newline: str | None = "") -> IO:
    """An existing regular file opened to append text (a symbolic link is refused, not followed)."""
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    check_target(path)
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)  # a FIFO put there meanwhile fails instead of blocking
    except OSError as exc:
        check_target(path)  # a symbolic link put there meanwhile: that error, not ELOOP's
        raise cannot_write(path, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RkgenError(
                f"{os.fspath(path)} is {_kind(st.st_mode)}; rkgen writes only regular files "
                "(remove it or choose another path)"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        raise
