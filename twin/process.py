"""The twin's daemon as a process: start it detached, find it, stop it, clean up after it.

The daemon runs in its own session so that it outlives `lab up`; everything a client
needs is in the state folder (twin/state.py). A daemon that does not start is a failure
of this machine (exit 1) with the log line that says why; a damaged state file is a
one-line TwinStateError, except on the clean-up paths, which read leniently.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from twin import server
from twin.errors import TwinError, TwinStateError
from twin.layers import layers_for_cleanup
from twin.state import StateFiles, host_twins_elsewhere, is_daemon

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.2
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the folder's live daemon: its pid file's, or one found by its command line
    when the pid file is lost or damaged."""
    pids = StateFiles(Path(state_dir)).daemon_pids()
    return pids[0] if pids else None


def last_log_line(files: StateFiles) -> str:
    """The daemon log's last line that says something, for a one-line error."""
    if not files.log.exists():
        return "(no log written)"
    lines = [line.strip() for line in files.log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(the log is empty)"


@contextmanager
def _start_lock(files: StateFiles):
    """One client at a time decides whether to start a daemon, so two `lab up` never start two."""
    with files.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def endpoint(state_dir: Path) -> str | None:
    """The twin's endpoint URL while its daemon is alive and answering, else None; a damaged
    endpoint file of a live daemon is a TwinStateError."""
    files = StateFiles(Path(state_dir))
    if daemon_pid(files.root) is None:
        return None
    url = files.read_endpoint()
    return url if url and server.answers(url) else None


def ensure_running(state_dir: Path, region: str, *, bodies: str = "host") -> str:
    """The endpoint of a running twin that serves region, starting the daemon if needed."""
    files = StateFiles(Path(state_dir).absolute())
    files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _start_lock(files):
        url = endpoint(files.root)
        if url is None:
            if bodies == "host":
                _refuse_a_second_twin(files)
            url = _start_daemon(files, region, bodies)
        server.ensure_image(url, region)
        files.add_region(region)
    return url


def _refuse_a_second_twin(files: StateFiles) -> None:
    """One twin with real bodies per machine: a second one's hosts would get the addresses
    the first one's hosts have (lab up would then meet a host key it did not pin)."""
    others = host_twins_elsewhere(files.root)
    if others:
        pid, folder = others[0]
        raise TwinError(f"the twin already runs on this machine for the lab home {Path(folder).parent} (daemon pid "
                        f"{pid}); its hosts would share addresses with this lab's: take that lab down first "
                        f"(`LAB_HOME={Path(folder).parent} make lab-down`, from the checkout that made it), or use "
                        f"that LAB_HOME")


def _start_daemon(files: StateFiles, region: str, bodies: str) -> str:
    old = daemon_pid(files.root)
    if old is not None:  # alive but not answering: hung; the API state it held is unreachable anyway
        _terminate(old, STOP_TIMEOUT_SECONDS)
    files.endpoint.unlink(missing_ok=True)
    files.pid.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with files.log.open("a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "twin.daemon", "--state-dir", str(files.root),
                                 "--region", region, "--bodies", bodies],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TwinError(f"the sim twin's daemon exited at start (code {proc.returncode}): {last_log_line(files)}; "
                            f"put right what {files.log} says, then run `lab up` again")
        try:
            url = files.read_endpoint()
        except TwinStateError:  # being written
            url = None
        if url and server.answers(url):
            return url
        time.sleep(POLL_SECONDS)
    _terminate(proc.pid, 5.0)
    raise TwinError(f"the sim twin's daemon did not answer within {START_TIMEOUT_SECONDS:.0f} s: "
                    f"{last_log_line(files)}; see {files.log}, then run `lab up` again")


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM (the daemon tears down its bodies), then SIGKILL after timeout; True if it had to kill."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_daemon(pid):
            return False
        time.sleep(POLL_SECONDS)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    while is_daemon(pid):
        time.sleep(POLL_SECONDS)
    return True


def stop(state_dir: Path) -> list[str]:
    """Stop the daemon (it removes its bodies); if it had to be killed, clean the host from disk."""
    pid = daemon_pid(state_dir)
    if pid is None:
        return cleanup_without_daemon(state_dir)
    if _terminate(pid, STOP_TIMEOUT_SECONDS):
        return [f"killed the twin's daemon (pid {pid}) after {STOP_TIMEOUT_SECONDS:.0f} s",
                *cleanup_without_daemon(state_dir)]
    return [f"stopped the twin's daemon (pid {pid})"]


def cleanup_without_daemon(state_dir: Path) -> list[str]:
    """Remove every trace of the twin from this host using only what is on disk; what went.
    Damaged state files do not stop it: it reads them leniently."""
    files = StateFiles(Path(state_dir))
    if not files.root.exists():
        return []
    gone = []
    for pid in files.daemon_pids():  # alive but not answering (else the caller would have used it)
        os.kill(pid, signal.SIGKILL)
        while is_daemon(pid):
            time.sleep(POLL_SECONDS)
        gone.append(f"killed the twin's unresponsive daemon (pid {pid})")
    for layer in layers_for_cleanup(files.root):
        gone.extend(layer.teardown_all())
    gone.extend(f"removed {path}" for path in files.remove_runtime_files())
    return gone
