"""Every file rkgen writes is written safely (rkgen.fileio): regular files only, atomically, one error line.

For each writer: a target that exists and is not a regular file (a symbolic link, a FIFO, a character device, a
folder) is refused; a failure on the way (no space, read-only file system, no permission, quota) is one
RkgenError line ``PATH: cannot write: <strerror>``.  Either way no temporary file is left and the target is
untouched.

The device node is a real one (``os.mknod``, a copy of /dev/null) when the tests run as root, else ``os.lstat`` is
monkeypatched to report a character device.  Root ignores file permissions, so a read-only folder (chmod 0o555)
provokes EACCES only for other users; as root the same errors come from a monkeypatched ``os.open``,
``os.fdopen``, ``os.fsync`` or ``os.replace``.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rkgen import fileio
from rkgen.cli import main as rkgen_main
from rkgen.codegen import write_atomic
from rkgen.derive.cli import _write as derive_write
from rkgen.derive.cli import compile_pdf
from rkgen.errors import RkgenError
from rkgen.train import runs

ROOT = os.geteuid() == 0
OLD = b"the original content\n"


class FakeFigure:
    """Just what save_figure needs of a matplotlib figure: savefig to a file object with a format."""

    def __init__(self):
        self.formats = []

    def savefig(self, fh, format=None, **kwargs):
        self.formats.append(format)
        fh.write(b"%PDF-fake " + str(format).encode())


def _history(path: Path) -> None:
    runs.HistoryWriter(path).close()


#: name -> a function writing to a path (every writer of rkgen, through fileio)
WRITERS = {
    "text": lambda p: fileio.write_text_atomic(p, "new\n"),
    "bytes": lambda p: fileio.write_bytes_atomic(p, b"new\n"),
    "handle": lambda p: _with_handle(p),
    "codegen.write_atomic": lambda p: write_atomic(p, "new\n"),
    "derive._write": lambda p: derive_write(p, "new\n"),
    "runs.write_json": lambda p: runs.write_json(p, {"a": 1}),
    "runs.save_npz": lambda p: runs.save_npz(p, x=np.arange(3)),
    "runs.HistoryWriter": _history,
    "save_figure": lambda p: fileio.save_figure(FakeFigure(), p),
}


def _with_handle(path):
    with fileio.open_atomic(path) as fh:
        fh.write(b"new\n")


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _snapshot(path: Path):
    """What must not change: the kind, the link's target, the content of a regular file (a link's too)."""
    st = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    content = path.read_bytes() if path.is_file() else None
    inner = _listing(path) if stat.S_ISDIR(st.st_mode) else None
    return stat.S_IFMT(st.st_mode), link, content, inner, st.st_ino


# --------------------------------------------------------------------------------------------------
# targets that are not regular files
# --------------------------------------------------------------------------------------------------


def _make(kind: str, folder: Path, monkeypatch) -> tuple[Path, str]:
    """A target of this kind in ``folder`` named like a file rkgen writes; the words the error must hold."""
    if kind == "symlink":
        real = folder / "real.txt"
        real.write_bytes(OLD)
        path = folder / "out.pdf"
        path.symlink_to(real)
        return path, "is a symbolic link"
    if kind == "dangling symlink":
        path = folder / "out.pdf"
        path.symlink_to(folder / "nowhere.txt")
        return path, "is a symbolic link"
    if kind == "symlink to /dev/null":
        path = folder / "out.pdf"
        path.symlink_to("/dev/null")
        return path, "is a symbolic link"
    if kind == "fifo":
        path = folder / "out.pdf"
        os.mkfifo(path)
        return path, "is a named pipe (FIFO)"
    if kind == "folder":
        path = folder / "out.pdf"
        path.mkdir()
        (path / "inside.txt").write_bytes(OLD)
        return path, "is a folder"
    if kind == "device":
        path = folder / "out.pdf"
        if ROOT:  # a real character device node: a copy of /dev/null
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        else:  # an ordinary file that lstat reports as a character device
            path.write_bytes(OLD)
            real_lstat = os.lstat

            def lstat(p, *args, **kwargs):
                st = real_lstat(p, *args, **kwargs)
                if os.fspath(p) == os.fspath(path):
                    fields = list(st)
                    fields[0] = stat.S_IFCHR | 0o666
                    return os.stat_result(fields)
                return st

            monkeypatch.setattr(os, "lstat", lstat)
        return path, "is a character device"
    raise AssertionError(kind)


KINDS = ("symlink", "dangling symlink", "symlink to /dev/null", "fifo", "folder", "device")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_target_that_is_not_a_regular_file_is_refused(tmp_path, monkeypatch, kind, writer):
    path, words = _make(kind, tmp_path, monkeypatch)
    before, listing = _snapshot(path), _listing(tmp_path)
    with pytest.raises(RkgenError) as info:
        WRITERS[writer](path)
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"{path} {words}; rkgen writes only regular files (remove it or choose another path)")
    assert _snapshot(path) == before
    assert _listing(tmp_path) == listing  # no temporary file left


def test_check_target():
    assert fileio.check_target("/nonexistent-folder/x.txt") is None
    with pytest.raises(RkgenError, match="is a character device"):
        fileio.check_target("/dev/null")
    with pytest.raises(RkgenError, match="is a folder"):
        fileio.check_target("/")


# --------------------------------------------------------------------------------------------------
# failures while writing
# --------------------------------------------------------------------------------------------------


def _fail_in(monkeypatch, where: str, code: int) -> None:
    """Make one step of a write fail with this errno."""
    err = OSError(code, os.strerror(code))
    if where == "open":  # creating the temporary file
        real = os.open

        def failing_open(path, flags, *args, **kwargs):
            if flags & os.O_CREAT:
                raise err
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", failing_open)
    elif where == "write":  # half the data is written, then the disk is full
        real_fdopen = os.fdopen

        def fdopen(fd, *args, **kwargs):
            fh = real_fdopen(fd, *args, **kwargs)
            write = fh.write

            def half(data):
                write(data[: len(data) // 2])
                fh.flush()
                raise err

            fh.write = half
            return fh

        monkeypatch.setattr(os, "fdopen", fdopen)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(err))
    elif where == "replace":
        monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(err))
    else:
        raise AssertionError(where)


FAILURES = [
    ("write", errno.ENOSPC),
    ("fsync", errno.EDQUOT),
    ("open", errno.EROFS),
    ("open", errno.EACCES),
    ("replace", errno.EACCES),
    ("replace", errno.EROFS),
]


@pytest.mark.parametrize(("where", "code"), FAILURES)
@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
def test_a_failing_write_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch, writer, where, code, existing):
    path = tmp_path / "out.pdf"
    if existing:
        path.write_bytes(OLD)
    listing = _listing(tmp_path)
    _fail_in(monkeypatch, where, code)
    with pytest.raises(RkgenError) as info:
        WRITERS[writer](path)
    assert str(info.value) == f"{path}: cannot write: {os.strerror(code)}"
    assert _listing(tmp_path) == listing
    if existing:
        assert path.read_bytes() == OLD


def _as_nobody(check) -> None:
    """Run ``check()`` in a forked child that has dropped root's privileges (uid/gid 65534), since root ignores
    a folder's permissions; a failed assertion in the child fails the test."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            check()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status
            print(f"in the child: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the check failed in the unprivileged child (see stderr)"


def test_a_read_only_folder_is_one_line(tmp_path):
    """A real folder without write permission; as root, the writers run in a child without root's privileges."""
    base = Path(tempfile.mkdtemp(prefix="rkgen-ro-")) if ROOT else tmp_path
    base.chmod(0o755)
    folder = base / "ro"
    folder.mkdir()
    (folder / "out.txt").write_bytes(OLD)
    folder.chmod(0o555)

    def check():
        for writer in WRITERS.values():
            with pytest.raises(RkgenError, match=": cannot write: Permission denied$"):
                writer(folder / "out.txt")

    try:
        _as_nobody(check) if ROOT else check()
        assert _listing(folder) == ["out.txt"] and (folder / "out.txt").read_bytes() == OLD
    finally:
        folder.chmod(0o755)
        if ROOT:
            shutil.rmtree(base)


def test_an_error_inside_the_block_removes_the_temporary_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(OLD)
    with pytest.raises(ZeroDivisionError):
        with fileio.open_atomic(path) as fh:
            fh.write(b"partial")
            1 / 0  # noqa: B018
    assert _listing(tmp_path) == ["out.bin"] and path.read_bytes() == OLD
    with pytest.raises(TypeError, match="not JSON serialisable"):
        runs.write_json(path, {"x": object()})
    assert _listing(tmp_path) == ["out.bin"] and path.read_bytes() == OLD


# --------------------------------------------------------------------------------------------------
# what a successful write leaves
# --------------------------------------------------------------------------------------------------


def test_modes_of_new_and_replaced_files(tmp_path):
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.txt"
        fileio.write_text_atomic(new, "x\n")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        for mode in (0o600, 0o755, 0o444):
            path = tmp_path / f"kept-{mode:o}.txt"
            path.write_text("old\n")
            path.chmod(mode)
            fileio.write_text_atomic(path, "x\n")
            assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_text() == "x\n"
        path = tmp_path / "setuid.txt"
        path.write_text("old\n")
        path.chmod(0o4777)
        fileio.write_text_atomic(path, "x\n")
        assert stat.S_IMODE(path.stat().st_mode) == 0o755  # no set-id bit, and the umask applies
        os.umask(0o077)
        fileio.write_text_atomic(new, "y\n")
        assert stat.S_IMODE(new.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_writers_write_what_they_should(tmp_path):
    fileio.write_text_atomic(tmp_path / "sub" / "a.txt", "line\n")  # a missing folder is made
    assert (tmp_path / "sub" / "a.txt").read_bytes() == b"line\n"
    runs.write_json(tmp_path / "c.json", {"x": np.float64(1.5), "p": Path("a")})
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": 1.5, "p": "a"}
    runs.save_npz(tmp_path / "s.npz", x=np.arange(4))
    with np.load(tmp_path / "s.npz") as z:
        assert z["x"].tolist() == [0, 1, 2, 3]
    fig = FakeFigure()
    assert fileio.save_figure(fig, tmp_path / "f.png", dpi=10) == tmp_path / "f.png"
    assert runs.save_figure is fileio.save_figure
    assert fig.formats == ["png"] and (tmp_path / "f.png").read_bytes() == b"%PDF-fake png"
    assert _listing(tmp_path) == ["c.json", "f.png", "s.npz", "sub"]


def test_save_figure_with_matplotlib(tmp_path):
    figure = pytest.importorskip("matplotlib.figure")
    fig = figure.Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    fileio.save_figure(fig, tmp_path / "f.png", dpi=20)
    fileio.save_figure(fig, tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(RkgenError, match="needs a suffix"):
        fileio.save_figure(fig, tmp_path / "f")
    assert _listing(tmp_path) == ["f.pdf", "f.png"]


# --------------------------------------------------------------------------------------------------
# the history file and the run folder
# --------------------------------------------------------------------------------------------------


def _row(i):
    return {k: (i if k in ("iteration", "epoch") else 0.5) for k in runs.HISTORY_COLUMNS}


def test_history_is_replaced_at_once_then_appended(tmp_path):
    path = tmp_path / "history.csv"
    w = runs.HistoryWriter(path)
    for i in range(1, 4):
        w.append(_row(i))
    w.close()
    inode = path.stat().st_ino
    w = runs.HistoryWriter(path, truncate_after=2)  # a resumed run keeps the rows up to its checkpoint
    assert path.stat().st_ino != inode  # a new file, renamed over the old one
    w.append(_row(3))
    w.close()
    assert runs.read_history(path)["iteration"].tolist() == [1, 2, 3]
    assert _listing(tmp_path) == ["history.csv"]


def test_history_that_fails_keeps_the_old_rows(tmp_path, monkeypatch):
    path = tmp_path / "history.csv"
    w = runs.HistoryWriter(path)
    w.append(_row(1))
    w.close()
    old = path.read_bytes()
    _fail_in(monkeypatch, "write", errno.ENOSPC)
    with pytest.raises(RkgenError, match=f"^{path}: cannot write: No space left on device$"):
        runs.HistoryWriter(path, truncate_after=1)
    assert path.read_bytes() == old and _listing(tmp_path) == ["history.csv"]


def test_history_append_on_a_full_disk_is_one_line(tmp_path):
    w = runs.HistoryWriter(tmp_path / "history.csv")

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

        def close(self):
            pass

    w._fh.close()
    w._fh = Full()
    w._w = csv.writer(w._fh)
    with pytest.raises(RkgenError, match="history.csv: cannot write: No space left on device$"):
        w.append(_row(1))


def test_history_opened_for_appending_refuses_a_link_put_there(tmp_path):
    real = tmp_path / "elsewhere.csv"
    real.write_bytes(OLD)
    link = tmp_path / "history.csv"
    link.symlink_to(real)
    with pytest.raises(RkgenError, match="is a symbolic link"):
        fileio.open_append(link)
    assert real.read_bytes() == OLD


def test_create_run_dir_on_a_read_only_parent_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("runs").mkdir()
    if ROOT:  # root may write into a 0o555 folder: the file system says no instead
        real = Path.mkdir

        def mkdir(self, *args, **kwargs):
            if not self.exists():
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
        reason = os.strerror(errno.EROFS)
    else:
        Path("runs").chmod(0o555)
        reason = os.strerror(errno.EACCES)
    try:
        with pytest.raises(RkgenError) as info:
            runs.create_run_dir("runs/x", "spiral", "rk4", "rk")
        assert str(info.value) == f"runs/x: cannot create the run folder: {reason}"
        pattern = rf"^runs/spiral-rk4-rk-\d{{8}}-\d{{6}}-[0-9a-f]{{6}}: cannot create the run folder: {reason}$"
        with pytest.raises(RkgenError, match=pattern):
            runs.create_run_dir(None, "spiral", "rk4", "rk")
        with pytest.raises(RkgenError, match=f"^elsewhere/y: cannot create the run folder: {reason}$"):
            runs.create_run_dir("elsewhere/y", "spiral", "rk4", "rk")  # a missing parent that cannot be made
    finally:
        (tmp_path / "runs").chmod(0o755)
    assert _listing(tmp_path) == ["runs"] and _listing(tmp_path / "runs") == []


# --------------------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = rkgen_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_to_a_fifo_is_refused(tmp_path, capsys):
    fifo = tmp_path / "out.md"
    os.mkfifo(fifo)
    code, out, err = run_cli(capsys, "derive", "rk4", "-o", str(fifo))
    assert (code, out) == (2, "")
    assert err == (
        f"rkgen: error: {fifo} is a named pipe (FIFO); rkgen writes only regular files "
        "(remove it or choose another path)\n"
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _listing(tmp_path) == ["out.md"]


def test_derive_to_a_device_is_refused(tmp_path, capsys):
    """As root, on a copy of /dev/full made for the test (root could replace the real one); otherwise on
    /dev/null itself, which a user cannot replace anyway."""
    if ROOT:
        device = tmp_path / "full"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    else:
        device = Path("/dev/null")
    for extra in ([], ["--json"]):
        code, out, err = run_cli(capsys, "derive", "rk4", "-o", str(device), *extra)
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and f"{device} is a character device" in err
        assert stat.S_ISCHR(os.lstat(device).st_mode)
    if ROOT:
        assert _listing(tmp_path) == ["full"]


def test_generate_force_to_a_symlink_is_refused(tmp_path, capsys):
    real = tmp_path / "real.py"
    real.write_bytes(OLD)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    for extra in ([], ["--force"]):
        code, out, err = run_cli(capsys, "generate", "rk4", "-o", str(link), *extra)
        assert (code, out) == (2, "")
        assert err == (
            f"rkgen: error: {link} is a symbolic link; rkgen writes only regular files "
            "(remove it or choose another path)\n"
        )
        assert link.is_symlink() and os.readlink(link) == str(real) and real.read_bytes() == OLD
        assert _listing(tmp_path) == ["link.py", "real.py"]


def test_generate_to_a_fifo_does_not_block(tmp_path, capsys):
    fifo = tmp_path / "rk4_net.py"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "generate", "rk4", "-o", str(tmp_path), "--force")
    assert code == 2 and err.count("\n") == 1 and "is a named pipe (FIFO)" in err


def test_compile_pdf_writes_only_a_regular_file(tmp_path):
    """A stand-in pdflatex that makes derivation.pdf: the output goes through fileio."""
    fake = tmp_path / "pdflatex"
    fake.write_text("#!/bin/sh\nprintf '%%PDF-1.4 fake\\n' > derivation.pdf\n")
    fake.chmod(0o755)
    out = tmp_path / "doc.pdf"
    compile_pdf("\\relax", out, str(fake))
    assert out.read_bytes() == b"%PDF-1.4 fake\n"
    fifo = tmp_path / "fifo.pdf"
    os.mkfifo(fifo)
    with pytest.raises(RkgenError, match="is a named pipe"):
        compile_pdf("\\relax", fifo, str(fake))
    assert _listing(tmp_path) == ["doc.pdf", "fifo.pdf", "pdflatex"]


def test_derive_force_never_replaces_a_link_or_a_fifo(tmp_path, capsys):
    """--force lets derive replace a different regular file, never a symbolic link (to a file or not) or a FIFO."""
    from types import SimpleNamespace

    from rkgen.derive.cli import run_derive

    real = tmp_path / "real.md"
    real.write_bytes(OLD)
    link = tmp_path / "link.md"
    link.symlink_to(real)
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)
    for target, kind in ((link, "a symbolic link"), (fifo, "a named pipe (FIFO)")):
        args = SimpleNamespace(tableau="euler", format=None, output=str(target), json=False, force=True)
        with pytest.raises(RkgenError, match=f"is {kind.replace('(', '[(]').replace(')', '[)]')}; rkgen writes only"):
            run_derive(args)
    assert link.is_symlink() and real.read_bytes() == OLD and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _listing(tmp_path) == ["fifo.md", "link.md", "real.md"]
    assert capsys.readouterr().out == ""
