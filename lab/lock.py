"""One run per lab at a time: an flock on .lab/<name>/lock, held by `up`, `install` and `down`.

Two `lab up` of one lab at once would each find nothing and create a whole lab; an
`install` while `down` deletes the hosts fails halfway. flock is released by the kernel
when the holder exits, however it exits (kill -9 included), so a lock is never stale and
never needs clearing by hand. The file says who holds it (command, pid, host, start
time) so that the run that is refused can say which run to wait for.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path

from labcore.errors import LabError
from labcore.paths import PRIVATE, LabPaths, Progress

HOLDER_BYTES = 4096
# The holder writes who it is right after locking: a run refused in that instant looks again briefly.
HOLDER_WAIT_SECONDS = 1.0

# Locks this process holds, by file: cli.main runs one command at a time, so a lock found
# here when a command starts is a finished command's that nothing released yet (an object
# the garbage collector has not reached): it is released and taken again.
_held: "weakref.WeakValueDictionary[Path, LabLock]" = weakref.WeakValueDictionary()


class LabBusyError(LabError):
    """Another run holds the lab's lock; it is running, so wait for it (exit 1)."""

    exit_code = 1


class LabLock:
    """The held lock of one lab; released by release(), or when the object goes (the process ends)."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)  # nobody holds it: a reader must not see a finished run's name
        os.close(fd)  # closing the only descriptor of the open file releases the flock
        if _held.get(self.path) is self:
            del _held[self.path]

    def __del__(self) -> None:
        self.release()


@atexit.register
def release_all() -> None:
    """Release every lock this process holds: at the end of a command, and before the interpreter exits."""
    for lock in list(_held.values()):
        lock.release()


def take_lock(paths: LabPaths, command: str, progress: Progress) -> LabLock:
    """The lab's lock for `lab <command>`, or LabBusyError naming the run that holds it, at once."""
    paths.ensure(progress)
    leftover = _held.get(paths.lock)
    if leftover is not None:
        leftover.release()
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise LabBusyError(f"lab {paths.root.name} is in use by {holder} (it holds {paths.lock}): wait for it "
                           f"to finish, then run this command again") from None
    except BaseException:
        os.close(fd)
        raise
    _write_holder(fd, command)
    lock = LabLock(paths.lock, fd)
    _held[paths.lock] = lock
    return lock


def _write_holder(fd: int, command: str) -> None:
    started = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    record = {"command": f"lab {command}", "pid": os.getpid(), "host": socket.gethostname(), "started": started}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    os.fsync(fd)


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote there: `lab up` (pid 42 on host, started ...)."""
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    while True:
        raw = os.pread(fd, HOLDER_BYTES, 0)
        if raw.strip() or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    try:
        record = json.loads(raw)
        text = f"`{record['command']}` (pid {int(record['pid'])} on {record['host']}, started {record['started']})"
    except (ValueError, KeyError, TypeError):
        return "another run (its lock file does not say which)"
    return text if len(text) <= 160 else text[:157] + "..."
