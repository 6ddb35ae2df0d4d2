"""The plan's vocabulary: what a step wants on a host, as plain frozen data.

An action says what it wants (a file with this content, packages present, a service
running, an entity in Keystone) and nothing about how to get there: bootstrap/decide.py
reads the host's facts and says what would change, bootstrap/render.py turns that into
shell, and the runner sends it. That is why `lab plan` can speak the guide's words, why
`lab install --check` can print a real change set with diffs without touching a host,
and why a second `lab install` sends nothing (pyinfra's operations work the same way).

Every action has `says()`: one line of the human plan, in the guide's words.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Union

if TYPE_CHECKING:
    from bootstrap.apt_lock import AptLock

LINE = 200  # no line of the human plan is longer than this


def _short(text: str, limit: int = LINE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


@dataclass(frozen=True)
class FileSpec:
    """A file with exactly this content, mode and owner (written atomically, only when it differs)."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = "root:root"

    def says(self) -> str:
        return f"write {self.path} ({self.mode:04o} {self.owner})"


@dataclass(frozen=True)
class CopySpec:
    """A file produced on one host (e.g. a Swift ring on the controller) copied to the step's hosts."""

    source_host: str
    path: str  # the same path on the source and on every destination
    mode: int = 0o644
    owner: str = "root:root"

    def says(self) -> str:
        return f"copy {self.path} from {self.source_host} ({self.mode:04o} {self.owner})"


@dataclass(frozen=True)
class Block:
    """A marked block of lines in a file, the rest of the file kept (the guide's /etc/hosts).

    The lab merges it from the file's current content (lab/hostsfile.py), so nothing but
    the shell's `cat` runs on the host. Lines whose first word is in comment_out are
    commented out: the guide's rule for the image's 127.0.1.1 line. The file is rewritten
    in place, never replaced: /etc/hosts may be a bind mount (containers).
    """

    path: str
    lines: tuple[str, ...]
    marker: str = "openstack-ec2-lab"
    comment_out: tuple[str, ...] = ()

    def says(self) -> str:
        also = f", comment out the {_names(self.comment_out)} lines" if self.comment_out else ""
        return f"keep the lab's block of {len(self.lines)} lines in {self.path}{also}"


@dataclass(frozen=True)
class Packages:
    """Debian packages installed (only the missing ones are asked for), non-interactively.

    debconf: answers given first (Debian's OpenStack packages ask questions). defer_starts:
    while apt runs, policy-rc.d keeps packages from starting their services; each
    service's own step starts it, configured. lock: how apt waits for dpkg's lock (the
    profile's; bootstrap/apt_lock.py). nice: the install's priority (nice(1)'s adjustment), for
    an install off the critical path whose postinst is long work (Horizon's compress).
    """

    names: tuple[str, ...]
    debconf: tuple[str, ...] = ()
    defer_starts: bool = True
    lock: AptLock | None = None
    nice: int = 0

    def says(self) -> str:
        first = f" (after {len(self.debconf)} debconf answers)" if self.debconf else ""
        return _short(f"install packages {' '.join(self.names)}{first}")


@dataclass(frozen=True)
class Service:
    """systemd units enabled and running, restarted when what they read changed.

    Restarted when an earlier action of the step changed something (its configuration),
    when one of the units is not running, or, with watch, when a file another step owns
    (a ring, proxy-server.conf) changed since the last restart: the checksums of watch are
    recorded in stamp after each restart (sha256sum's format).
    start_only: a unit that is not running is started, never restarted for a change.
    """

    units: tuple[str, ...]
    enable: bool = True
    start_only: bool = False
    daemon_reload: bool = False
    watch: tuple[str, ...] = ()
    stamp: str | None = None

    def __post_init__(self) -> None:
        if bool(self.watch) != bool(self.stamp):
            raise ValueError("Service: watch and stamp go together")

    def says(self) -> str:
        how = "start" if self.start_only else "start (restarted when its configuration changes)"
        if self.watch:
            how = f"start (restarted when {_names(tuple(p.rsplit('/', 1)[-1] for p in self.watch))} change)"
        return _short(f"{'enable and ' if self.enable else ''}{how}: {' '.join(self.units)}")


@dataclass(frozen=True)
class SqlQuery:
    """A query on MariaDB: as root over the local socket, or logged in as login=(user, password, host)."""

    sql: str
    database: str = ""
    login: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Sql:
    """An SQL statement, run unless done answers expect (first line of `mysql -N -B`)."""

    statement: str
    done: SqlQuery
    expect: str
    what: str
    database: str = ""

    def says(self) -> str:
        return _short(f"{self.what} (SQL), unless the database already says so")


@dataclass(frozen=True)
class OpenStack:
    """One of the guide's `openstack` commands (argv without the word), with the query that
    tells the entity exists (Keystone's database: 0.1 s, not the CLI's 2-3 s).

    A step's OpenStack actions go to one process (openstack_batch.py) with one token.
    update: for an entity that holds a secret (a user's password), the command that sets it
    again when the secret changed; stamp: where the lab records a sha256 of that command.
    """

    argv: tuple[str, ...]
    exists: str | None = None  # SQL on the keystone database; a non-zero first number = exists
    update: tuple[str, ...] | None = None
    stamp: str | None = None
    python: str = "python3"  # runs openstack_batch.py: the interpreter of the host's openstack client
    openrc: str = "/root/admin-openrc"  # the credentials the commands run with

    def __post_init__(self) -> None:
        if bool(self.update) != bool(self.stamp):
            raise ValueError("OpenStack: update and stamp go together")

    def says(self) -> str:
        unless = ""
        if self.exists:
            unless = " unless it has it" if self.argv[:2] == ("role", "add") else " unless it exists"
        again = "; set its password again when the secret changes" if self.update else ""
        return _short(describe_openstack(self.argv) + unless + again)


def describe_openstack(argv: tuple[str, ...]) -> str:
    """The guide's command in words: `user create ... swift` -> "create the openstack user `swift`"."""
    noun, verb = argv[0], argv[1]
    options = _options(argv[2:])
    positional = options.pop("", [])
    if noun == "role" and verb == "add":
        return (f"add the role `{positional[-1]}` to the user `{options.get('--user', ['?'])[0]}` "
                f"on the project `{options.get('--project', ['?'])[0]}`")
    if noun == "endpoint" and verb == "create":
        return f"create the {' '.join(positional)} endpoint"
    return f"{verb} the openstack {noun} `{positional[-1] if positional else '?'}`"


def _options(words: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        if words[i].startswith("--") and i + 1 < len(words):
            found.setdefault(words[i], []).append(words[i + 1])
            i += 2
        else:
            found.setdefault("", []).append(words[i])
            i += 1
    return found


@dataclass(frozen=True)
class RingDevice:
    region: int
    zone: int
    ip: str
    port: int
    device: str  # the Swift device name: /srv/node/<device> on the node
    weight: float = 100.0


@dataclass(frozen=True)
class Ring:
    """A Swift ring with exactly these devices, built with swift-ring-builder in swift_dir.

    The lab reads what the builder and ring files hold (ring_facts.py) and computes the
    commands: create, add the missing devices, rebalance. Devices and weights are data, so
    growing or shrinking a ring is a change of this value.
    """

    name: str  # account, container, object
    swift_dir: str
    part_power: int
    replicas: int
    min_part_hours: int
    devices: tuple[RingDevice, ...]
    python: str = "python3"  # runs ring_facts.py

    def says(self) -> str:
        return (f"build the {self.name} ring: partition power {self.part_power}, {self.replicas} replicas, "
                f"min_part_hours {self.min_part_hours}, {len(self.devices)} devices; rebalance when they change")


Judge = Literal["exit", "first-boot", "cloud-ready"]


@dataclass(frozen=True)
class Wait:
    """A bounded wait: the probe is asked until it says ready, at most `seconds`.

    judge says how to read the probe: "exit" (exit 0 is ready: wait_http.py), "first-boot"
    (first_boot.py's JSON: the OS, cloud-init, the dpkg and apt locks), "cloud-ready"
    (cloud_ready.py: one "ok"/"late" line per check). {seconds} in the probe is replaced by
    the seconds one round may take. A probe that is a pure read is asked with the facts
    (read_only), so a host that is ready costs nothing more; otherwise (cloud_ready.py
    writes a test object) it runs in `lab install` only, never in `--check`.
    """

    what: str
    probe: tuple[str, ...]
    judge: Judge = "exit"
    seconds: float = 60.0
    read_only: bool = True
    always: bool = False  # wait even when nothing changed before it in the step

    def says(self) -> str:
        return _short(f"wait until {self.what} (at most {_duration(self.seconds)})")

    def command(self, seconds: float) -> str:
        return " ".join(shlex.quote(word.replace("{seconds}", str(max(0, int(seconds))))) for word in self.probe)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


@dataclass(frozen=True)
class Reboot:
    """Reboot the host when a package asks for it (the guide: a new kernel needs a reboot)."""

    flag: str = "/var/run/reboot-required"

    def says(self) -> str:
        return f"reboot the host if the upgrade asks for it ({self.flag})"


@dataclass(frozen=True)
class Command:
    """The fallback: shell commands, run unless `unless` exits 0.

    after_change: also run when an earlier action of the step changed something (a
    configuration the commands read), as a step's commands always did.
    """

    run: tuple[str, ...]
    unless: str | None = None
    after_change: bool = True
    what: str | None = None

    def says(self) -> str:
        if self.what:
            return _short(self.what)
        first = self.run[0] if self.run else "(nothing)"
        more = f" (+{len(self.run) - 1} more)" if len(self.run) > 1 else ""
        return _short(f"run `{first}`{more}" + (", unless already done" if self.unless else ""), LINE)


Action = Union[FileSpec, CopySpec, Block, Packages, Service, Sql, OpenStack, Ring, Wait, Reboot, Command]
ACTIONS = (FileSpec, CopySpec, Block, Packages, Service, Sql, OpenStack, Ring, Wait, Reboot, Command)
