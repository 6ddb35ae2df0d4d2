"""Every host's service logs in one archive, secrets masked: what to attach when asking why a lab broke.

Per host, one question first (which of the services' systemd units it has, every swift-*
one included, and which files lie under the services' log folders), then one read per
source: the journal of each unit (`journalctl -u UNIT --no-pager`, its last lines) and
the end of each log file. Hosts are read at once. The archive holds one member per host
and source (`object1/journal-swift-object.log`, `controller/var/log/keystone/keystone.log`),
the lab's own logs under `_lab/logs/` (no hostname has an underscore), and for a host
that could not be read `HOST/unreachable.txt` saying why. Every member passes through
Secrets.mask on its way into the archive, in one place (write_archive); the archive is 0600.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from invoke.exceptions import CommandTimedOut

from bootstrap.profiles import Profile
from labcore.errors import RemoteError
from labcore.inventory import NodeRecord
from labcore.paths import write_atomic
from labcore.remote import RemoteFactory

# /var/log/apache2: where keystone under apache2 (ubuntu-18.04) writes its requests and errors.
LOG_DIRS = ("/var/log/keystone", "/var/log/apache2", "/var/log/swift", "/var/log/rabbitmq", "/var/log/mysql")
OTHER_UNITS = ("mariadb", "mysql", "rabbitmq-server", "memcached", "chrony")
JOURNAL_LINES = 5000
FILE_BYTES = 8 * 1024 * 1024  # the end of a log file; its beginning is said to be left out
READ_TIMEOUT = 120.0
MAX_PARALLEL = 32
_UNITS, _FILES = "--lab-units--", "--lab-files--"


@dataclass(frozen=True)
class Sources:
    units: tuple[str, ...]  # unit names without .service
    files: tuple[str, ...]  # absolute paths


@dataclass
class HostLogs:
    host: str
    members: list[tuple[str, str]] = field(default_factory=list)  # (name under HOST/, text)
    error: str | None = None  # why the host (or the rest of it) could not be read


def candidate_units(profile: Profile) -> tuple[str, ...]:
    """Units whose journal is collected when the host has them: keystone's web server (uwsgi's unit
    keystone on debian-12, apache2 on ubuntu-18.04), the database under either name, etcd, ..."""
    return tuple(dict.fromkeys((profile.keystone_service, profile.database_service, *OTHER_UNITS,
                                profile.etcd_service)))


def discover_command(units: tuple[str, ...]) -> str:
    """The host's units among units and swift-*, by primary name (an alias such as mysql -> mariadb
    counts once); then every file under LOG_DIRS but the compressed old ones."""
    patterns = " ".join(shlex.quote(p) for p in ("swift-*.service", *(f"{u}.service" for u in units)))
    dirs = " ".join(shlex.quote(d) for d in LOG_DIRS)
    return (f"echo {_UNITS}; for u in $(systemctl list-unit-files --no-legend {patterns} 2>/dev/null "
            f"| awk '{{print $1}}' | grep -v @); do systemctl show -p Id --value \"$u\"; done | sort -u; "
            f"echo {_FILES}; for d in {dirs}; do [ -d \"$d\" ] && find \"$d\" -type f ! -name '*.gz' "
            f"! -name '*.xz' ! -name '*.bz2' ! -name '*.zst' 2>/dev/null; done | sort; true")


def parse_discovery(stdout: str) -> Sources:
    units, files, section = [], [], None
    for line in stdout.splitlines():
        line = line.strip()
        if line in (_UNITS, _FILES):
            section = line
        elif line and section == _UNITS and line.endswith(".service"):
            units.append(line[: -len(".service")])
        elif line.startswith("/") and section == _FILES:
            files.append(line)
    if section != _FILES:
        raise RemoteError(f"the host's list of logs was not understood: {stdout[:120]!r}")
    return Sources(tuple(dict.fromkeys(units)), tuple(files))


def journal_command(unit: str, lines: int) -> str:
    return f"journalctl -u {shlex.quote(unit + '.service')} --no-pager -o short-iso -n {int(lines)}"


def file_command(path: str) -> str:
    """The file's size on the first line, then its last FILE_BYTES bytes."""
    p = shlex.quote(path)
    return f"stat -c %s -- {p} && tail -c {FILE_BYTES} -- {p}"


def file_text(stdout: str) -> str:
    size, _, body = stdout.partition("\n")
    if size.strip().isdigit() and int(size) > FILE_BYTES:
        return f"[the first {int(size) - FILE_BYTES} of {int(size)} bytes are left out]\n{body}"
    return body


def collect_host(node: NodeRecord, factory: RemoteFactory, profile: Profile, lines: int = JOURNAL_LINES) -> HostLogs:
    """One host's logs; a host that cannot be read is a HostLogs with error, holding what was read before."""
    logs = HostLogs(node.name)
    remote = None
    try:
        remote = factory(node)
        found = remote.run(discover_command(candidate_units(profile)), timeout=READ_TIMEOUT)
        if not found.ok:
            raise RemoteError(f"listing its logs failed (exit {found.exited}): {found.stderr.strip()[-200:]}")
        sources = parse_discovery(found.stdout)
        for unit in sources.units:
            answer = remote.run(journal_command(unit, lines), timeout=READ_TIMEOUT)
            logs.members.append((f"journal-{unit}.log", _with_failure(answer.stdout, answer, "journalctl")))
        for path in sources.files:
            answer = remote.run(file_command(path), timeout=READ_TIMEOUT)
            logs.members.append((path.lstrip("/"), _with_failure(file_text(answer.stdout), answer, "reading it")))
    except CommandTimedOut:
        logs.error = f"{node.name} ({node.ssh_host}) did not answer within {READ_TIMEOUT:.0f} s{_kept(logs)}"
    except RemoteError as exc:
        logs.error = f"{node.name} ({node.ssh_host}) could not be read{_kept(logs)}: {exc}"
    finally:
        if remote is not None:
            remote.close()
    return logs


def _kept(logs: HostLogs) -> str:
    return f" (after {len(logs.members)} logs, kept in the archive)" if logs.members else ""


def _with_failure(text: str, answer, what: str) -> str:
    if answer.ok:
        return text
    return f"{text}\n[{what} exited {answer.exited}: {answer.stderr.strip()[-500:]}]\n"


def collect(nodes: list[NodeRecord], factory: RemoteFactory, profile: Profile,
            lines: int = JOURNAL_LINES) -> list[HostLogs]:
    """Every node's logs, read at once; in the nodes' order."""
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(nodes) or 1)) as pool:
        return list(pool.map(lambda node: collect_host(node, factory, profile, lines), nodes))


def local_logs(folder: Path) -> list[tuple[str, str]]:
    """The lab's own logs (.lab/<name>/logs/*.log: the runner's, one per host), their last FILE_BYTES."""
    members = []
    for path in sorted(folder.glob("*.log")) if folder.is_dir() else []:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - FILE_BYTES))
            members.append((f"_lab/logs/{path.name}", handle.read().decode("utf-8", errors="replace")))
    return members


def members_of(hosts: list[HostLogs], local: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every member of the archive, by name: HOST/..., HOST/unreachable.txt, _lab/logs/..."""
    members = []
    for host in hosts:
        members += [(f"{host.host}/{name}", text) for name, text in host.members]
        if host.error is not None:
            members.append((f"{host.host}/unreachable.txt", host.error + "\n"))
    return members + local


def write_archive(path: Path, members: list[tuple[str, str]], mask: Callable[[str], str],
                  now: Callable[[], float] = time.time) -> int:
    """A .tar.gz of members, every one masked on its way in, written whole with mode 0600; its size in bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in members:
            data = mask(text).encode("utf-8", errors="replace")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(now())
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    write_atomic(path, raw)
    return len(raw)
