"""Hosts for tests, none of them reachable over a network.

- FakeRemote: a Remote answering commands from rules; a command no rule matches FAILS the
  test (UnexpectedCommand), unless the test says what to answer otherwise.
- FakeHost: a Session (what the runner talks to) made of Python state: files, units,
  packages, and rules for the checks a step's author wrote. It records what the runner
  asked (typed facts, one list per round trip) and sent (typed writes and commands);
  read_only=True fails the test on any send.
- LocalHost: a Remote whose / is a directory: the runner's real shell runs in bash there.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bootstrap.changes import Run, Write
from bootstrap.facts import CheckFact, DebsFact, FileFact, FileState, Output, UnitsFact, UnitState
from bootstrap.session import SendFailed
from labcore.remote import RunResult

Answer = RunResult | Callable[[str, str | None], RunResult]


class UnexpectedCommand(AssertionError):
    """A host was sent something the test did not expect: the test fails."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FakeRemote:
    """Answers each command with the first rule whose regex matches it (latest rule first).

    `answer(pattern, result)` adds a rule; a callable result gets (command, stdin).
    Commands and stdin are recorded in order in `.commands` and `.stdins`. A command no rule
    matches raises UnexpectedCommand and is kept in `.unexpected`, unless `otherwise` says
    what to answer.
    """

    name: str
    rules: list[tuple[re.Pattern, Answer]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    stdins: list[str | None] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    otherwise: RunResult | None = None
    closed: bool = False

    def answer(self, pattern: str, result: Answer) -> "FakeRemote":
        self.rules.insert(0, (re.compile(pattern, re.S), result))
        return self

    def run(self, command: str, *, sudo: bool = True, stdin: str | None = None,
            timeout: float | None = None) -> RunResult:
        self.commands.append(command)
        self.stdins.append(stdin)
        for pattern, result in self.rules:
            if pattern.search(command):
                return result(command, stdin) if callable(result) else result
        if self.otherwise is not None:
            return self.otherwise
        self.unexpected.append(command)
        raise UnexpectedCommand(f"{self.name}: no rule answers {command[:300]!r}")

    def close(self) -> None:
        self.closed = True

    def ran(self, pattern: str) -> list[str]:
        regex = re.compile(pattern, re.S)
        return [c for c in self.commands if regex.search(c)]


class FakeFleet:
    """A RemoteFactory over FakeRemotes, one per node name, safe to call from threads."""

    def __init__(self) -> None:
        self.hosts: dict[str, FakeRemote] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> FakeRemote:
        with self._lock:
            return self.hosts.setdefault(name, FakeRemote(name))

    def __call__(self, node) -> FakeRemote:
        return self[node.name]


# ------------------------------------------------------------------ typed hosts
class FakeHost:
    """A Session made of state. Facts are answered from files, units and debs, then from
    `known` (fact -> answer), then from rules on the fact's command text (the checks the
    plan's author wrote); what nothing answers fails the test."""

    def __init__(self, name: str, *, read_only: bool = False):
        self.name, self.tag, self.read_only = name, "", read_only
        self.files: dict[str, tuple[bytes, int, str]] = {}
        self.units: dict[str, UnitState] = {}
        self.debs: set[str] = set()
        self.known: dict = {}
        self.rules: list[tuple[re.Pattern, Answer]] = []
        self.asked: list[list] = []  # one list of facts per round trip
        self.sent: list = []  # Write and Run values, in order
        self.reads: list[str] = []
        self.reopened = 0
        self.closed = False
        self._lock = threading.RLock()

    def answer(self, pattern: str, result: Answer) -> "FakeHost":
        self.rules.insert(0, (re.compile(pattern, re.S), result))
        return self

    def _rule(self, command: str, stdin: str | None = None) -> RunResult:
        for pattern, result in self.rules:
            if pattern.search(command):
                return result(command, stdin) if callable(result) else result
        raise UnexpectedCommand(f"{self.name}: nothing answers {command[:300]!r}")

    def _fact(self, fact):
        if fact in self.known:
            return self.known[fact]
        if isinstance(fact, FileFact):
            if fact.path not in self.files:
                return None
            data, mode, owner = self.files[fact.path]
            return FileState(_sha(data), mode, owner, data if fact.content else None)
        if isinstance(fact, UnitsFact):
            return {u: self.units.get(u, UnitState(False, False)) for u in fact.units}
        if isinstance(fact, DebsFact):
            return frozenset(n for n in fact.names if n in self.debs)
        result = self._rule(fact.command())
        return result.ok if isinstance(fact, CheckFact) else Output(result.exited, result.stdout)

    def ask(self, facts) -> dict:
        with self._lock:
            self.asked.append(list(facts))
        return {fact: self._fact(fact) for fact in facts}

    def _send(self, what) -> None:
        if self.read_only:
            raise UnexpectedCommand(f"{self.name}: read-only host was sent {what!r}"[:400])
        self.sent.append(what)

    def run(self, command: str, stdin: str | None = None) -> RunResult:
        with self._lock:
            self._send(Run(command, stdin))
        return self._rule(command, stdin)  # outside the lock: a rule may wait for another phase

    def write(self, write: Write) -> None:
        with self._lock:
            self._send(write)
            mode, owner = write.mode, write.owner
            if write.in_place and write.path in self.files:
                _, mode, owner = self.files[write.path]
            self.files[write.path] = (write.data or b"", mode, owner)

    def read(self, path: str) -> bytes:
        with self._lock:
            self.reads.append(path)
            if path not in self.files:
                raise SendFailed(f"base64 -- {path}", RunResult(1, "", f"base64: {path}: No such file or directory"),
                                 f"cannot read {path} on {self.name}")
            return self.files[path][0]

    def reopen(self) -> None:
        self.reopened += 1

    def close(self) -> None:
        self.closed = True

    def written(self) -> list[str]:
        return [s.path for s in self.sent if isinstance(s, Write)]

    def commands(self) -> list[str]:
        return [s.command for s in self.sent if not isinstance(s, Write)]


class HostFleet:
    """The runner's open_session over FakeHosts: one host per node name; counts connections."""

    def __init__(self, hosts: dict[str, FakeHost] | None = None):
        self.hosts = dict(hosts or {})
        self.opened: list[str] = []
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> FakeHost:
        with self._lock:
            return self.hosts.setdefault(name, FakeHost(name))

    def __call__(self, node, log) -> FakeHost:
        with self._lock:
            self.opened.append(node.name)
        return self[node.name]

    def round_trips(self, name: str) -> int:
        return len(self.hosts[name].asked)


IMAGE_HOSTS = "127.0.0.1 localhost\n127.0.1.1 ubuntu-bionic\n::1 ip6-localhost ip6-loopback\n"


# ------------------------------------------------------------------ shell hosts
# Absolute paths the steps touch; moved under the host's directory (never this machine's).
_ROOTED = re.compile(r"(?<![\w./-])/(?=(?:etc|var|usr|srv|root)/)")


class LocalHost:
    """A Remote whose / is a directory: commands run in bash with absolute paths moved under it.

    bin_dir comes first on PATH (fakes of what would change this machine); FIRST_BOOT_ROOT
    points first_boot.py at the directory. `.calls` counts round trips.
    """

    def __init__(self, name: str, root: Path, bin_dir: Path, env: dict | None = None):
        self.name, self.root, self.bin_dir = name, root, bin_dir
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOST_ROOT": str(root),
                    "FIRST_BOOT_ROOT": str(root), **(env or {})}
        self.calls: list[str] = []
        self.closed = 0

    def run(self, command: str, *, sudo: bool = True, stdin: str | None = None,
            timeout: float | None = None) -> RunResult:
        self.calls.append(command)
        rooted = _ROOTED.sub(f"{self.root}/", command)
        done = subprocess.run(["bash", "-c", rooted], input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=120)
        return RunResult(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        self.closed += 1

    def path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str:
        return self.path(path).read_text()

    def write(self, path: str, text: str) -> None:
        self.path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path(path).write_text(text)

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Every file under the root with its content and mode: to prove nothing changed."""
        return {str(p.relative_to(self.root)): (p.read_bytes(), p.stat().st_mode)
                for p in sorted(self.root.rglob("*")) if p.is_file() and not p.is_symlink()}


def fake_bin(directory: Path, scripts: dict[str, str]) -> Path:
    """Executables (bash bodies) standing in for commands that would change this machine.
    `stat` reports root:root for %U:%G: the tests do not run as root, chown is faked."""
    directory.mkdir(exist_ok=True)
    real_stat = shutil.which("stat")
    scripts = {"stat": f'args=(); for a in "$@"; do args+=("${{a//%U:%G/root:root}}"); done; exec {real_stat} '
                       '"${args[@]}"', "chown": "exit 0", **scripts}
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return directory


# ------------------------------------------------------------------ the base phase's hosts
OS_RELEASE = {"ubuntu-18.04": 'NAME="Ubuntu"\nVERSION_ID="18.04"\nID=ubuntu\nPRETTY_NAME="Ubuntu 18.04.6 LTS"\n',
              "debian-12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'}
BASE_FAKES = {
    "hostname": 'if [ $# -eq 0 ]; then cat "$HOST_ROOT/running-hostname"; '
                'else printf "%s\\n" "$1" > "$HOST_ROOT/running-hostname"; fi',
    # Debian 12 in a container: no systemd-hostnamed to talk to.
    "hostnamectl": 'echo "Failed to connect to bus: No such file or directory" >&2; exit 1',
    "apt-get": 'echo "$*" >> "$HOST_ROOT/apt-get.log"; case "$*" in *update*) '
               'mkdir -p "$HOST_ROOT/var/lib/apt/lists" && '
               'touch "$HOST_ROOT/var/lib/apt/lists/deb.debian.org_dists_bookworm_main_binary-amd64_Packages";; esac',
    "add-apt-repository": 'mkdir -p "$HOST_ROOT/etc/apt/sources.list.d" && echo "deb http://ubuntu-cloud.archive'
                          '.canonical.com/ubuntu bionic-updates/rocky main" '
                          '> "$HOST_ROOT/etc/apt/sources.list.d/cloudarchive-rocky.list"',
    # Units as files under the host's directory: this machine's systemd is never asked, let alone
    # told to mask anything (the tests may run as root). A fresh image runs apt's timers.
    "systemctl": 'd="$HOST_ROOT/systemd"; verb=$1; shift; '
                 'quiet=0; if [ "$1" = --quiet ]; then quiet=1; shift; fi; case $verb in '
                 'mask) mkdir -p "$d/masked"; echo "mask $*" >> "$d/log"; for u; do touch "$d/masked/$u"; done;; '
                 'stop) echo "stop $*" >> "$d/log"; for u; do rm -f "$d/active/$u"; done;; '
                 'is-active) r=3; for u; do s=inactive; if [ -e "$d/active/$u" ]; then s=active; r=0; fi; '
                 '[ $quiet = 1 ] || echo $s; done; exit $r;; '
                 'is-enabled) r=1; for u; do if [ -e "$d/masked/$u" ]; then echo masked; else echo enabled; r=0; fi; '
                 'done; exit $r;; *) echo "the fake systemctl does not know: $verb $*" >&2; exit 9;; esac',
}
IMAGE_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "unattended-upgrades.service")


def _python36() -> str | None:
    """Ubuntu 18.04's python3 is 3.6: the hosts' python3 is a 3.6 interpreter when this machine has one."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")))
    return found[0] if found else None


def base_hosts(tmp_path: Path, os_name: str, ips: dict[str, str] | None = None) -> dict[str, LocalHost]:
    """A LocalHost per node as a fresh image of os_name leaves it: the image's /etc/hosts
    (with its 127.0.1.1 line), /etc/os-release, a cloud hostname; fakes for what would
    change this machine (hostname, apt-get, ...)."""
    from plan_fixtures import IPS

    scripts = dict(BASE_FAKES)
    # The archive preflight is never sent to the real archive: it is logged and passes.
    scripts["python3"] = ('case "$1" in */apt_pocket.py) echo "$*" >> "$HOST_ROOT/apt-pocket.log"; exit 0;; esac; '
                          f'exec {_python36() or shutil.which("python3")} "$@"')
    bin_dir = fake_bin(tmp_path / "bin", scripts)
    made = {}
    for name, ip in (ips or IPS).items():
        host = LocalHost(name, tmp_path / name, bin_dir)
        host.write("/etc/hosts", IMAGE_HOSTS)
        host.write("/etc/os-release", OS_RELEASE[os_name])
        host.write("/etc/hostname", f"ip-{ip.replace('.', '-')}\n")
        host.write("/running-hostname", f"ip-{ip.replace('.', '-')}\n")
        for unit in IMAGE_UNITS:
            host.write(f"/systemd/active/{unit}", "")
        made[name] = host
    return made


def run_with_fake_client(tmp_path: Path, script: str, client: str, body: str, rc: str,
                         **env: str) -> subprocess.CompletedProcess:
    """A verify script run in sh with tmp_path/bin/<client> (body: a sh script) first on PATH, STORE an
    empty folder for it, and tmp_path/<rc> standing in for the controller's credentials file."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / client).write_text(body)
    (tmp_path / "bin" / client).chmod(0o755)
    (tmp_path / "store").mkdir(exist_ok=True)
    environment = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "STORE": str(tmp_path / "store"),
                   **env}
    return subprocess.run(["sh", "-c", script.replace(f"/root/{rc}", str(tmp_path / rc))], capture_output=True,
                          text=True, env=environment)
