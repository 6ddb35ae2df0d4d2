"""`lab verify --tempest`: Tempest installed and run on the controller, its results judged here.

One run of every identity v3 / admin v3 / object storage API test gives both sets: the
API set as Tempest counts it, and the interop guideline's required tests (all inside it),
so the cloud is tested once, not twice. The run goes on in a systemd unit on the
controller; this side asks for its progress once a poll (a line per minute) and, when it
ends, copies the subunit stream and Tempest's log (secrets masked) to `.lab/<name>/tempest/`.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bootstrap.conformance import guideline, results, tempest_conf, tempest_host
from bootstrap.conformance.tempest_host import TempestHost
from labcore.errors import RemoteError
from labcore.paths import make_dirs, write_atomic
from labcore.remote import Remote, RunResult
from labcore.secrets import Secrets

POLL_SECONDS = 60.0  # a progress line per minute
RUN_TIMEOUT_SECONDS = 3600.0
INSTALL_TIMEOUT_SECONDS = 1200.0
DEFAULT_CONCURRENCY = 4
API_SET_NAME = "identity v3, identity admin v3 and object storage API"


@dataclass(frozen=True)
class Conformance:
    guideline: results.SetSummary
    api: results.SetSummary
    subunit: Path
    log: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.guideline.failed and not self.api.failed


def run_tempest(remote: Remote, profile: str, release: str, secrets: Secrets, out_dir: Path, *,
                progress: Callable[[str], None], concurrency: int = DEFAULT_CONCURRENCY,
                poll_seconds: float = POLL_SECONDS, timeout_seconds: float = RUN_TIMEOUT_SECONDS,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Conformance:
    required = guideline.for_release(release)  # before anything is sent: an unknown release is one line
    host = TempestHost(profile)
    progress(f"installing Tempest on {remote.name} (once; Debian's package or a virtualenv)")
    _must(remote, tempest_host.install_command(host), secrets, "install Tempest", INSTALL_TIMEOUT_SECONDS)
    info = json.loads(_must(remote, tempest_host.proxy_info_command(), secrets, "read the proxy's /info").stdout)
    # The system bundle holds the lab's CA (the front door's trust step): a virtualenv's requests
    # (Ubuntu 18.04's Tempest) reads certifi's own bundle otherwise, and would refuse the door.
    conf = tempest_conf.render(profile, secrets["admin_pass"], info, ca_file=tempest_conf.SYSTEM_BUNDLE)
    _must(remote, tempest_host.workspace_command(host), secrets, "write tempest.conf", stdin=conf)
    started = clock()
    _start(remote, host, concurrency, secrets)
    progress(f"tempest: running every {API_SET_NAME} test, {concurrency} at a time "
             f"(a line per minute; the guideline's {len(required.tests)} required tests are among them)")
    _wait(remote, host, secrets, progress, started, poll_seconds, timeout_seconds, clock, sleep)
    make_dirs(out_dir)  # 0700, as every folder of the lab's under .lab/
    stream = base64.b64decode(_must(remote, tempest_host.subunit_command(host), secrets, "read the results").stdout)
    subunit_path = out_dir / tempest_host.SUBUNIT
    write_atomic(subunit_path, stream)
    log_path = out_dir / tempest_host.LOG_FILE
    log = gzip.decompress(base64.b64decode(_must(remote, tempest_host.log_command(host), secrets, "read tempest.log").stdout))
    write_atomic(log_path, secrets.mask(log.decode("utf-8", "replace")))
    found = results.read_stream(stream)
    return Conformance(
        results.guideline_summary(f"{required.program} {required.guideline}", required, found),
        results.api_summary(API_SET_NAME, found), subunit_path, log_path, clock() - started)


def _start(remote: Remote, host: TempestHost, concurrency: int, secrets: Secrets) -> None:
    started = remote.run(tempest_host.start_command(host, concurrency), sudo=True, timeout=60)
    if started.exited == 3:
        raise RemoteError(f"{remote.name}: a Tempest run is still going on there: wait for it, or stop it with "
                          f"`lab ssh {remote.name} -- sudo systemctl stop {tempest_host.UNIT}`")
    if not started.ok:
        raise _failed(remote, "start Tempest", started, secrets)


def _wait(remote: Remote, host: TempestHost, secrets: Secrets, progress, started: float, poll_seconds: float,
          timeout_seconds: float, clock, sleep) -> None:
    while True:
        rc, done, failed = tempest_host.parse_progress(
            _must(remote, tempest_host.progress_command(host), secrets, "ask Tempest's progress").stdout)
        minutes = (clock() - started) / 60
        if rc is not None:
            progress(f"tempest: finished, {done} tests in {minutes:.1f} min ({failed} failed)")
            return
        if clock() - started > timeout_seconds:
            remote.run(tempest_host.stop_command(), sudo=True, timeout=60)
            raise RemoteError(f"{remote.name}: Tempest ran over {timeout_seconds / 60:.0f} min ({done} tests done): "
                              f"stopped; its log is {host.workspace}/{tempest_host.RUN_LOG} there")
        progress(f"tempest: {done} tests done ({failed} failed) after {minutes:.0f} min")
        sleep(poll_seconds)


def _must(remote: Remote, command: str, secrets: Secrets, what: str, timeout: float = 120.0,
          stdin: str | None = None) -> RunResult:
    result = remote.run(command, sudo=True, stdin=stdin, timeout=timeout)
    if not result.ok:
        raise _failed(remote, what, result, secrets)
    return result


def _failed(remote: Remote, what: str, result: RunResult, secrets: Secrets) -> RemoteError:
    last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or [f"exit {result.exited}"]
    return RemoteError(f"{remote.name}: could not {what}: {secrets.mask(last[0])[:200]}")
