"""The one place the plan becomes shell: every command the lab sends to a host is made here.

Words are quoted with shlex (no SQL or password is rewritten to fit a shell: the
statement given is the statement sent); every function returns text that
tests run with `sh` against temp files.
"""

from __future__ import annotations

import hashlib
import shlex

from bootstrap.actions import SqlQuery
from bootstrap.apt_lock import AptLock, guarded

STAMP_DIR = "/var/lib/lab"
POLICY_RC_D = "/usr/sbin/policy-rc.d"
POLICY_MARK = "openstack-ec2-lab: services start once configured"
# A run killed mid-install may leave the file: the packages are not done until it is gone.
NO_LEFTOVER_POLICY = f"! grep -qs {shlex.quote(POLICY_MARK)} {POLICY_RC_D}"


def join(argv: list[str] | tuple[str, ...]) -> str:
    return " ".join(shlex.quote(word) for word in argv)


def quote_readable(text: str) -> str:
    """text as one shell word, in double quotes when nothing in it is special there (SQL
    with its single quotes stays readable), else as shlex quotes it."""
    if not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


# ------------------------------------------------------------------ files
def write_command(path: str, mode: int, owner: str) -> str:
    """Writes base64 from stdin to path atomically (temp file in the same directory, then mv)."""
    p = shlex.quote(path)
    return (f"set -e; d=$(dirname -- {p}); mkdir -p -- \"$d\"; t=$(mktemp \"$d/.lab-write.XXXXXX\"); "
            f"trap 'rm -f \"$t\"' EXIT; base64 -d > \"$t\"; chown {shlex.quote(owner)} \"$t\"; "
            f"chmod {mode:04o} \"$t\"; mv -f -- \"$t\" {p}")


def write_in_place_command(path: str) -> str:
    """Writes base64 from stdin into path keeping its inode, mode and owner (a bind-mounted
    /etc/hosts cannot be replaced); decoded to a temp file first, so a broken transfer
    leaves the file as it was."""
    p = shlex.quote(path)
    return (f"set -e; t=$(mktemp); trap 'rm -f \"$t\"' EXIT; base64 -d > \"$t\"; "
            f"if [ -e {p} ]; then cat \"$t\" > {p}; else install -m 0644 \"$t\" {p}; fi")


def read_command(path: str) -> str:
    return f"base64 -- {shlex.quote(path)}"


# ------------------------------------------------------------------ packages
APT_CONFIGURE_AGAIN = "a package's configuration failed: dpkg --configure -a, then the install once more"


def apt_install(packages: tuple[str, ...] | list[str], lock: AptLock | None = None) -> str:
    """Non-interactive install that keeps existing config files (the guide's answers to dpkg),
    waiting for dpkg's lock as the profile says (lock).

    A failed install gets two more tries at what dpkg left unconfigured: openstack-dashboard's
    postinst runs Horizon's `manage.py compress`, whose SCSS parser (pyScss) now and then fails
    on a template it parses the next time (twice in one bench run on the twin). A package
    that fails three times in a row fails the step, with all three outputs in its log."""
    once = guarded(lock, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                         "-o Dpkg::Options::=--force-confold " + join(packages))
    again = "DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a"
    return f"{{ {once} || {{ echo {shlex.quote(APT_CONFIGURE_AGAIN)} >&2; {again}; {once}; }}; }}"


def at_priority(nice: int, command: str) -> str:
    """command run at nice(1)'s adjustment nice (0: as it is), every process it starts too."""
    return f"nice -n {nice} sh -c {shlex.quote(command)}" if nice else command


def debconf_command(selections: tuple[str, ...]) -> str:
    return f"printf '%s\\n' {shlex.quote(chr(10).join(selections))} | debconf-set-selections"


def starts_deferred(command: str) -> str:
    """command, with Debian's policy-rc.d answering "not now" to each service start a package asks for.

    The guide installs, then configures, then restarts every service, so the start at
    install time is thrown away: keystone's uwsgi workers, RabbitMQ, MariaDB, a storage
    node's twelve Swift daemons, all loading while dpkg still unpacks. Each service's own
    step starts it, configured. The file goes when the command ends, however it ends; a
    policy-rc.d the host already had is left as it is.
    """
    p = POLICY_RC_D
    own = f"printf '#!/bin/sh\\n# {POLICY_MARK}\\nexit 101\\n' > {p} && chmod 755 {p}"
    return (f"if grep -qs {shlex.quote(POLICY_MARK)} {p}; then rm -f {p}; fi; "
            f"if [ -e {p} ]; then {command}; else trap 'rm -f {p}' EXIT; trap 'rm -f {p}; exit 1' HUP INT TERM; "
            f"{own} && {command}; fi")


# ------------------------------------------------------------------ services
def systemctl(verb: str, units: tuple[str, ...] | list[str]) -> str:
    return f"systemctl {verb} {join(units)}"


def checksum_record(stamp: str, files: tuple[str, ...]) -> str:
    """Records the files' checksums (sha256sum's format) in stamp; stamp_unchanged compares."""
    return f"mkdir -p -m 0700 {shlex.quote(stamp.rsplit('/', 1)[0])} && sha256sum {join(files)} > {shlex.quote(stamp)}"


def stamp_unchanged(stamp: str, files: tuple[str, ...]) -> str:
    return f"sha256sum {join(files)} 2>/dev/null | cmp -s - {shlex.quote(stamp)}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_record(stamp: str, value: str) -> str:
    """Records a sha256 (never the text: it may hold a secret) in stamp; digest_matches compares."""
    return f"mkdir -p -m 0700 {shlex.quote(stamp.rsplit('/', 1)[0])} && echo {digest(value)} > {shlex.quote(stamp)}"


def digest_matches(stamp: str, value: str) -> str:
    return f"grep -qsx {digest(value)} {shlex.quote(stamp)}"


def commands_stamp(stamp: str, commands: tuple[str, ...]) -> tuple[str, str]:
    """(command recording that these very commands ran, check true while the record names them).

    For steps whose outcome no check can see in full (an archive added): changed commands
    run the step again. The record is a sha256 of the commands, never their text.
    """
    value = "\n".join(commands)
    return digest_record(stamp, value), digest_matches(stamp, value)


def in_parallel(*commands: str) -> str:
    """Shell text running commands at the same time; true only when every one succeeded.

    For the guide's independent steps that each spend seconds loading Python
    (keystone-manage, swift-ring-builder): on a host with two or more cores they overlap.
    """
    if len(commands) == 1:
        return commands[0]
    jobs = " ".join(f"( {command} ) & p{i}=$!;" for i, command in enumerate(commands))
    waits = " ".join(f"wait $p{i} || s=1;" for i in range(len(commands)))
    return f"s=0; {jobs} {waits} [ $s = 0 ]"


# ------------------------------------------------------------------ databases
def mysql(query: SqlQuery | str, database: str = "") -> str:
    """`mysql -N -B` running one statement: as root over the local socket, or as query.login."""
    if isinstance(query, str):
        query = SqlQuery(query, database)
    argv = ["mysql", "-N", "-B"]
    prefix = ""
    if query.login:
        user, password, host = query.login
        argv += ["-u", user, "-h", host]
        prefix = f"MYSQL_PWD={shlex.quote(password)} "
    if query.database:
        argv.append(query.database)
    return f"{prefix}{join(argv)} -e {quote_readable(query.sql)}"


# ------------------------------------------------------------------ swift rings
def ring_builder(builder: str, *words: str | int | float) -> str:
    return join(["swift-ring-builder", builder, *(str(w) for w in words)])


def ring_rebalance(builder: str) -> str:
    # Exit 1 is swift-ring-builder's "warning" (e.g. balance); the ring is written all the same.
    return f"{ring_builder(builder, 'rebalance')} || [ $? -eq 1 ]"
