"""The shell a Tempest run sends to the controller: install, workspace, start, progress, results (pure).

Tempest runs on the controller, where `controller` resolves and every endpoint of the
catalog is reachable, from what the profile's release has:
- debian-12: Debian's own `tempest` package (33.0.0 in bookworm);
- ubuntu-18.04: Tempest 23.0.0 (the last release that supports Rocky, for Python 3.5-3.7)
  in a virtualenv on the host's Python 3.6, with the upper constraints of OpenStack's
  stable/train requirements (Tempest's own pin, 22.x there, taken out so 23.0.0 installs).

The run itself is a transient systemd unit: it outlives the SSH session that started it
(a dropped connection does not stop a 10-minute run), a second start while one runs is
refused, and its text log is what the progress line counts.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bootstrap.conformance.tempest_conf import WORKSPACE

UNIT = "lab-tempest"
WORKSPACE_NAME = "openstack-ec2-lab"
VENV = "/opt/openstack-ec2-lab/tempest"
TRAIN_CONSTRAINTS = "https://releases.openstack.org/constraints/upper/train"
# Every identity v3, identity admin v3 and object storage API test: the "API" set. The
# guideline's required tests all lie inside it, so one run gives both sets' results.
API_SET = r"^tempest\.api\.(identity\.(v3|admin\.v3)|object_storage)\."
RUN_LOG = "run.log"
RUN_RC = "run.rc"
SUBUNIT = "results.subunit"
LOG_FILE = "tempest.log"
# What `tempest run` prints for each test it finished (stestr's subunit-trace lines).
DONE_LINE = r"\.\.\. (ok|FAILED|SKIPPED)"
FAILED_LINE = r"\.\.\. FAILED"


@dataclass(frozen=True)
class TempestHost:
    profile: str
    workspace: str = WORKSPACE

    @property
    def tempest(self) -> str:
        return f"{VENV}/bin/tempest" if self.profile == "ubuntu-18.04" else "tempest"

    @property
    def stestr(self) -> str:
        return f"{VENV}/bin/stestr" if self.profile == "ubuntu-18.04" else "stestr"


def install_command(host: TempestHost) -> str:
    """Install Tempest once (idempotent: a host that has it installs nothing)."""
    if host.profile == "ubuntu-18.04":
        return "\n".join([
            "set -e",
            f"if [ ! -x {VENV}/bin/tempest ]; then",
            "  DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv python3-dev build-essential "
            "libffi-dev libssl-dev",
            f"  python3 -m venv {VENV}",
            f"  {VENV}/bin/pip install -q 'pip<22'",  # pip 21.3 is the last for Python 3.6
            f"  python3 -c \"import urllib.request as u,sys; sys.stdout.write(u.urlopen('{TRAIN_CONSTRAINTS}', "
            f"timeout=60).read().decode())\" | grep -v '^tempest===' > {VENV}/constraints.txt",
            f"  {VENV}/bin/pip install -q -c {VENV}/constraints.txt tempest==23.0.0",
            "fi",
            f"{VENV}/bin/tempest --version"])
    return ("command -v tempest >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "-o DPkg::Lock::Timeout=300 tempest\ntempest --version")


def workspace_command(host: TempestHost) -> str:
    """A Tempest workspace at host.workspace, made once; tempest.conf arrives on stdin, 0600."""
    ws = shlex.quote(host.workspace)
    # `tempest init` fails (exit 1, silently) when run from the login user's home as root, and a
    # failed init leaves its name registered, so the next one says it exists: from /, under a
    # name of the lab's own, forgotten first when the folder has no workspace yet.
    return "\n".join([
        "set -e", "umask 077", "cd /",
        f"if [ ! -f {ws}/.stestr.conf ]; then",
        f"  {host.tempest} workspace remove --name {WORKSPACE_NAME} >/dev/null 2>&1 || true",
        f"  mkdir -p {ws}",
        f"  {host.tempest} init --name {WORKSPACE_NAME} {ws} >/dev/null",
        "fi",
        f"cat > {ws}/etc/tempest.conf"])


def proxy_info_command() -> str:
    """The proxy's /info (what middleware it announces), asked on the controller."""
    return ("python3 -c \"import urllib.request as u,sys; "
            "sys.stdout.write(u.urlopen('http://controller:8080/info', timeout=15).read().decode())\"")


def start_command(host: TempestHost, concurrency: int) -> str:
    """Start the run as a transient unit; exit 3 (and start nothing) while one still runs."""
    ws = shlex.quote(host.workspace)
    # --regex: what both 23.0.0 and 33.0.0 take (--include-list is 27.0.0 and later)
    run = (f"{host.tempest} run --regex {shlex.quote(API_SET)} --concurrency {int(concurrency)} "
           f"> {RUN_LOG} 2>&1; echo $? > {RUN_RC}")
    return "\n".join([
        f"if systemctl is-active --quiet {UNIT}; then echo 'a Tempest run is still going on' >&2; exit 3; fi",
        f"systemctl reset-failed {UNIT} 2>/dev/null || true",
        f"rm -f {ws}/{RUN_LOG} {ws}/{RUN_RC} {ws}/{LOG_FILE}",
        f"systemd-run --unit={UNIT} --collect --property=WorkingDirectory={ws} /bin/sh -c {shlex.quote(run)}"])


def progress_command(host: TempestHost) -> str:
    """One line: "<rc or -> <tests done> <failed>", for the progress line and to know the run ended."""
    ws = shlex.quote(host.workspace)
    return (f"rc=$(cat {ws}/{RUN_RC} 2>/dev/null || echo -); "
            f"done=$(grep -cE {shlex.quote(DONE_LINE)} {ws}/{RUN_LOG} 2>/dev/null || true); "
            f"failed=$(grep -cE {shlex.quote(FAILED_LINE)} {ws}/{RUN_LOG} 2>/dev/null || true); "
            "echo \"$rc ${done:-0} ${failed:-0}\"")


def parse_progress(stdout: str) -> tuple[int | None, int, int]:
    """(exit code or None while running, tests done, tests failed) from progress_command's line."""
    words = stdout.split()
    if len(words) != 3 or not words[1].isdigit() or not words[2].isdigit():
        raise ValueError(f"unexpected progress line: {stdout.strip()[:80]!r}")
    return (None if words[0] == "-" else int(words[0])), int(words[1]), int(words[2])


def stop_command() -> str:
    return f"systemctl stop {UNIT} 2>/dev/null || true"


def subunit_command(host: TempestHost) -> str:
    """The last run's subunit stream, base64 on one line (it is binary)."""
    return f"cd {shlex.quote(host.workspace)} && {host.stestr} last --subunit | base64 -w0"


def log_command(host: TempestHost) -> str:
    """Tempest's log, gzipped then base64 (it can be tens of MB as text)."""
    return f"gzip -c {shlex.quote(host.workspace)}/{LOG_FILE} | base64 -w0"
