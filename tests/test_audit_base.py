"""The base phase run for real: bash and python3 on directories standing in for the hosts' /.

The runner, the steps' checks and commands and the /etc/hosts script all run as they
would over SSH; only absolute paths are moved under a directory per host, and the
commands that would change this machine (hostname, hostnamectl, apt-get,
add-apt-repository, chown) are small fakes that act on that directory.
"""

from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from plan_fixtures import IPS, inventory

from bootstrap.components import base
from bootstrap.plan import Plan
from bootstrap.planner import build_plan
from bootstrap.runner import run_plan
from lab.hostsfile import BEGIN, END, render_hosts
from labcore.remote import RunResult
from labcore.secrets import generate

IMAGE_HOSTS = "127.0.0.1 localhost\n127.0.1.1 ubuntu-bionic\n::1 ip6-localhost ip6-loopback\n"
# Absolute paths the steps touch; moved under the host's directory (never this machine's).
_ROOTED = re.compile(r"(?<![\w./-])/(?=(?:etc|var|usr)/)")


def _python36() -> str | None:
    """Ubuntu 18.04's python3 is 3.6: use a 3.6 interpreter as the hosts' python3 when there is one."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")))
    return found[0] if found else None


FAKES = {
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
    # Ownership is not what these tests are about, and they need not run as root.
    "chown": "exit 0",
}


class LocalHost:
    """A Remote whose / is a directory: commands run in bash with absolute paths moved under it."""

    def __init__(self, name: str, root: Path, bin_dir: Path):
        self.name, self.root, self.bin_dir = name, root, bin_dir

    def run(self, command: str, *, sudo: bool = True, stdin: str | None = None,
            timeout: float | None = None) -> RunResult:
        rooted = _ROOTED.sub(f"{self.root}/", command)
        env = {**os.environ, "PATH": f"{self.bin_dir}:{os.environ['PATH']}", "HOST_ROOT": str(self.root)}
        done = subprocess.run(["bash", "-c", rooted], input=stdin, capture_output=True, text=True, env=env,
                              timeout=60)
        return RunResult(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        pass

    def read(self, path: str) -> str:
        return (self.root / path.lstrip("/")).read_text()

    def write(self, path: str, text: str) -> None:
        (self.root / path.lstrip("/")).write_text(text)

    def apt_calls(self) -> list[str]:
        log = self.root / "apt-get.log"
        return log.read_text().splitlines() if log.exists() else []


def _fake_bin(directory: Path) -> Path:
    directory.mkdir()
    real_stat = shutil.which("stat")
    scripts = dict(FAKES)
    # The runner asks owner "%U:%G"; with chown faked, report what it would have set.
    scripts["stat"] = f'args=(); for a in "$@"; do args+=("${{a//%U:%G/root:root}}"); done; exec {real_stat} "${{args[@]}}"'
    python36 = _python36()
    if python36:
        scripts["python3"] = f'exec {python36} "$@"'
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return directory


@pytest.fixture
def hosts(tmp_path) -> dict[str, LocalHost]:
    bin_dir = _fake_bin(tmp_path / "bin")
    made = {}
    for name, ip in IPS.items():
        root = tmp_path / name
        (root / "etc").mkdir(parents=True)
        (root / "etc/hosts").write_text(IMAGE_HOSTS)
        (root / "etc/hostname").write_text(f"ip-{ip.replace('.', '-')}\n")
        (root / "running-hostname").write_text(f"ip-{ip.replace('.', '-')}\n")
        made[name] = LocalHost(name, root, bin_dir)
    return made


def base_phase(os_name: str) -> tuple[Plan, object]:
    inv = inventory(os_name)
    plan = build_plan(inv, generate())
    return Plan(tuple(s for s in plan.steps if s.phase == "base")), inv


def install(plan: Plan, inv, hosts: dict[str, LocalHost], tmp_path: Path):
    report = run_plan(plan, inv, lambda node: hosts[node.name], generate(), log_dir=tmp_path / "logs",
                      progress=lambda line: None)
    assert report.ok, report.failure and report.failure.message()
    return report


def a_day_passes(hosts: dict[str, LocalHost]) -> None:
    day_ago = time.time() - 86400
    for host in hosts.values():
        for path in host.root.rglob("*"):
            os.utime(path, (day_ago, day_ago), follow_symlinks=False)


# ---------------------------------------------------------------- behaviour
@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_second_install_a_day_later_changes_nothing(os_name, hosts, tmp_path):
    plan, inv = base_phase(os_name)
    first = install(plan, inv, hosts, tmp_path)
    assert first.counts()["changed"] == 3 * len(hosts)  # hostname, hosts-file, package-archive everywhere
    upgrades = {name: host.apt_calls() for name, host in hosts.items()}
    assert all(any("update" in call for call in calls) for calls in upgrades.values())

    a_day_passes(hosts)
    second = install(plan, inv, hosts, tmp_path)

    assert second.counts()["changed"] == 0
    assert {name: host.apt_calls() for name, host in hosts.items()} == upgrades  # no apt-get update again


def test_install_names_every_host_and_keeps_the_images_hosts_lines(hosts, tmp_path):
    plan, inv = base_phase("debian-12")  # hostnamectl fails there: the `hostname` fallback is used
    install(plan, inv, hosts, tmp_path)
    block = [BEGIN] + [f"{ip} {name}" for name, ip in IPS.items()] + [END]
    for name, host in hosts.items():
        assert host.read("/running-hostname") == f"{name}\n"
        assert host.read("/etc/hostname") == f"{name}\n"
        assert host.read("/etc/hosts").splitlines() == [
            "127.0.0.1 localhost", "# 127.0.1.1 ubuntu-bionic", "::1 ip6-localhost ip6-loopback", *block]


def test_install_repairs_a_hosts_file_edited_by_hand_and_keeps_the_edit(hosts, tmp_path):
    plan, inv = base_phase("ubuntu-18.04")
    install(plan, inv, hosts, tmp_path)
    object1 = hosts["object1"]
    edited = object1.read("/etc/hosts").replace("10.0.0.52 object2", "10.9.9.9 object2") + "192.0.2.1 mirror\n"
    object1.write("/etc/hosts", edited)

    again = install(plan, inv, hosts, tmp_path)

    changed = [(r.host, r.step) for r in again.results if r.status == "changed"]
    assert changed == [("object1", "hosts-file")]
    text = object1.read("/etc/hosts")
    assert "10.0.0.52 object2" in text and "10.9.9.9" not in text
    assert "192.0.2.1 mirror" in text and text.endswith(f"{END}\n")


def test_a_renamed_host_gets_its_name_back(hosts, tmp_path):
    plan, inv = base_phase("ubuntu-18.04")
    install(plan, inv, hosts, tmp_path)
    hosts["object2"].write("/running-hostname", "ip-10-0-0-52\n")  # e.g. cloud-init after a reboot

    again = install(plan, inv, hosts, tmp_path)

    assert [(r.host, r.step) for r in again.results if r.status == "changed"] == [("object2", "hostname")]
    assert hosts["object2"].read("/running-hostname") == "object2\n"


# ---------------------------------------------------------------- the plan
def test_lab_plan_shows_hostname_and_hosts_file_on_every_node():
    plan, inv = base_phase("ubuntu-18.04")
    rows = [r for r in plan.as_rows(generate()) if r["phase"] == "base"]
    for name, ip in IPS.items():
        mine = {r["step"]: r for r in rows if r["host"] == name}
        assert list(mine)[:2] == ["hostname", "hosts-file"]  # before the package archive
        assert mine["hostname"]["files"][0]["path"] == "/etc/hostname"
        assert mine["hostname"]["files"][0]["content"] == f"{name}\n"
        script = mine["hosts-file"]["files"][0]["content"]
        assert all(f"('{n}', '{i}')" in script for n, i in IPS.items())


def test_hosts_script_writes_exactly_what_lab_up_writes(tmp_path):
    inv = inventory()
    script = tmp_path / "hosts.py"
    script.write_text(base.hosts_script(inv))
    existing = IMAGE_HOSTS + f"{BEGIN}\n10.1.1.1 stale\n{END}\n# kept comment\n"
    target = tmp_path / "hosts"
    target.write_text(existing)

    assert subprocess.run(["python3", str(script), "check", str(target)]).returncode == 1
    assert subprocess.run(["python3", str(script), "apply", str(target)]).returncode == 0
    assert target.read_text() == render_hosts(existing, inv)
    assert subprocess.run(["python3", str(script), "check", str(target)]).returncode == 0


def test_hosts_script_is_valid_python_3_6_for_ubuntu_1804():
    source = base.hosts_script(inventory())
    ast.parse(source, feature_version=(3, 6))
    assert "annotations" not in source and "labcore.inventory" not in source


def test_package_archive_is_not_redone_because_lists_got_old():
    plan, _ = base_phase("ubuntu-18.04")
    archive = next(s for s in plan.steps if s.name == "package-archive")
    assert "-mmin" not in archive.check and "-mtime" not in archive.check
    assert archive.check.startswith("grep -rqs 'rocky' /etc/apt/sources.list.d/")  # the profile's own check first
    assert base.ARCHIVE_STAMP in archive.commands[-1] and base.ARCHIVE_STAMP in archive.check
