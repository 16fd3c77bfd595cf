"""One writer per run folder: an advisory lock on ``<run_dir>/.lock``.

Two commands writing the same run folder at once would interleave records and overwrite
each other's report, so every command that writes a run folder (``run``, ``calibrate``,
``report``) holds this lock. It is a ``fcntl.flock`` on the lock file: the kernel releases
it when the holder exits, however it exits, so a lock file left behind by a killed process
is free and simply taken over. The file records the holder (pid, host, command, start
time) so that a refused command can say who holds the folder. Where ``fcntl`` is missing
(Windows) or the file system refuses locks, the folder is used unguarded, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no advisory lock (see hold)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunFolderError(ValueError):
    """``--out`` cannot be used as a run folder (e.g. it is a file): exit status 2."""


class RunFolderLocked(RuntimeError):
    """Another live process holds the run folder's lock: exit status 2."""


def prepare_run_dir(run_dir: Path) -> Path:
    """Create ``run_dir`` (and its parents) before any cell runs, so a bad ``--out`` fails
    at once with its path named rather than after the work; returns it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(
            f"--out {run_dir} is an existing file, not a run folder; give a folder path"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def describe_holder(info: dict) -> str:
    """``pid 123 on host h (`cmd`) since 2024-..``: the holder as one phrase."""
    if not info.get("pid"):
        return "another process (its details are not written yet)"
    return (
        f"pid {info['pid']} on {info.get('host', '?')} (`{info.get('command', '?')}`) "
        f"since {info.get('since', '?')}"
    )


def _read_info(fd: int, wait: float = 0.5) -> dict:
    """The holder's record in the lock file; waits up to ``wait`` s for a holder that has
    just taken the lock to write it. {} if there is none (or it is unreadable)."""
    deadline = time.monotonic() + wait
    while True:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            info = json.loads(text)
            if isinstance(info, dict):
                return info
        if time.monotonic() >= deadline:
            return {}
        time.sleep(0.05)


def _write_info(fd: int, command: str) -> None:
    """Record this process as the holder (replacing what a dead holder left)."""
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


def _try_flock(fd: int, run_dir: Path) -> bool:
    """Take the flock without waiting. False if another process holds it; True if taken,
    or if locking is unavailable here (then a warning: the folder is unguarded)."""
    if fcntl is None:
        print(f"warning: no file locks on this system; {run_dir} is unguarded", file=sys.stderr)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:  # e.g. a network file system without flock
        print(f"warning: cannot lock {run_dir} ({err.strerror}); unguarded", file=sys.stderr)
    return True


@contextlib.contextmanager
def hold(run_dir: Path, command: str | None = None, quiet: bool = False) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the ``with`` block; raise RunFolderLocked naming the
    holder if a live process has it. ``command`` is recorded for that message (default:
    this process's argv). The lock file stays, emptied, when the block ends: deleting it
    would let a waiting opener lock a file no longer in the folder."""
    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_flock(fd, run_dir):
            raise RunFolderLocked(
                f"{run_dir} is in use by {describe_holder(_read_info(fd))}; wait for it to "
                "finish (or stop it), or give another --out"
            )
        stale = _read_info(fd, wait=0)
        if stale.get("pid") and not quiet:
            print(f"note: took over {path} left by {describe_holder(stale)}", file=sys.stderr)
        remove_stale_temporaries(Path(run_dir))
        _write_info(fd, command or " ".join(sys.argv))
        try:
            yield Path(run_dir)
        finally:
            os.ftruncate(fd, 0)  # released cleanly: no holder recorded
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Remove the temporary files (``.<name>.<random>.tmp``, ``bench.store.replacing``) a
    killed writer left in ``run_dir``: with its lock held, no writer of it is alive."""
    stale = [p for p in run_dir.rglob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def artifact_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` while a cached artifact is made: parallel cells
    (``--jobs``) that need the same artifact wait for the one making it instead of making
    it too. Without ``fcntl`` (Windows) there is no lock: they may make it twice."""
    if fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
