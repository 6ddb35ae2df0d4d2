"""A package install that fails to configure gets dpkg --configure -a and the install once more
(bootstrap/render.apt_install): openstack-dashboard's postinst runs Horizon's compress, which
now and then fails on a template it parses the next time. Run for real in sh, with apt-get and
dpkg on PATH that fail as often as a test says; a third failure in a row is the step's."""

from __future__ import annotations

import os
import subprocess

import pytest

from bootstrap.apt_lock import AptLock
from bootstrap.render import APT_CONFIGURE_AGAIN, apt_install


def _tool(folder, name: str, fails: int) -> None:
    """A stand-in for apt-get or dpkg that logs its call and fails its first `fails` calls."""
    path = folder / name
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {folder}/calls\n"
                    f"n=$(grep -c '^{name} ' {folder}/calls); [ $n -gt {fails} ]\n")
    path.chmod(0o755)


@pytest.mark.parametrize(("apt_fails", "dpkg_fails", "ok", "calls"), [
    (0, 0, True, ["apt-get install"]),
    (1, 0, True, ["apt-get install", "dpkg --force-confold --configure -a", "apt-get install"]),
    (1, 1, True, ["apt-get install", "dpkg --force-confold --configure -a", "apt-get install"]),
    (2, 1, False, ["apt-get install", "dpkg --force-confold --configure -a", "apt-get install"]),
])
def test_a_failed_install_is_configured_again_and_tried_once_more(tmp_path, apt_fails, dpkg_fails, ok, calls):
    _tool(tmp_path, "apt-get", apt_fails)
    _tool(tmp_path, "dpkg", dpkg_fails)
    done = subprocess.run(["sh", "-c", apt_install(["openstack-dashboard", "apache2"])], capture_output=True,
                          text=True, env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert (done.returncode == 0) is ok
    said = [" ".join(line.split()[:2] if line.startswith("apt-get") else line.split()) for line in
            (tmp_path / "calls").read_text().splitlines()]
    assert said == calls
    assert (APT_CONFIGURE_AGAIN in done.stderr) is (apt_fails > 0)


def test_the_lock_wait_holds_for_each_try():
    command = apt_install(["keystone"], AptLock(seconds=300, option=True))
    assert command.count("apt-get -o DPkg::Lock::Timeout=300 install") == 2


@pytest.mark.parametrize("nice", [0, 10])
def test_an_install_off_the_critical_path_runs_at_a_lower_priority(tmp_path, nice):
    """openstack-dashboard's install (its postinst compresses Horizon's files, ~15 s of CPU) runs
    beside Keystone's chapter: apt-get, and so dpkg and the postinst, at the niceness it asks for."""
    from bootstrap.actions import Packages
    from bootstrap.decide import Context, decide_step
    from bootstrap.facts import DebsFact

    (tmp_path / "apt-get").write_text(f"#!/bin/sh\nnice > {tmp_path}/niceness\n")
    (tmp_path / "apt-get").chmod(0o755)
    action = Packages(("openstack-dashboard",), defer_starts=False, nice=nice)  # no policy-rc.d on this machine
    sends = decide_step((action,), {DebsFact(action.names): frozenset()}, Context()).sends
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", sends[0].command], check=True, env=env)
    base = int(subprocess.run(["nice"], capture_output=True, text=True, check=True).stdout)
    assert int((tmp_path / "niceness").read_text()) == min(19, base + nice)
