"""A Swift-only lab (configs/tempauth.yaml, auth: tempauth) for real on the twin: up, a node-to-node
copy into a root-owned folder, install, verify, a round trip with the TempAuth credentials, down
with nothing left. Runs the `lab` CLI as a user would, like tests/test_e2e_sim.py (whose fixtures
and helpers it uses)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from test_e2e_sim import ROOT, _ec2, _eventually, _lab, _traces, twin_lab_home

pytestmark = pytest.mark.e2e

TEMPAUTH = ROOT / "configs" / "tempauth.yaml"
LAB = "swift-lab"


@pytest.fixture(scope="module")
def tempauth_home(tmp_path_factory):
    for home in twin_lab_home(tmp_path_factory, "e2e-tempauth"):
        try:
            yield home
        finally:
            _lab(home, "down", check=False, config=TEMPAUTH)  # twin_lab_home's own down is the default lab's


def _on(home: Path, node: str, command: str, check: bool = True):
    return _lab(home, "ssh", node, "--", command, check=check, timeout=120, config=TEMPAUTH)


def _copy_between_nodes_into_a_root_owned_folder(home: Path) -> None:
    """The notes' `scp` failed on a folder the login user cannot write; `lab copy` writes as root."""
    _on(home, "controller", "sudo sh -c 'head -c 300000 /dev/urandom > /root/payload.bin && "
                            "chmod 0640 /root/payload.bin'")
    _on(home, "object1", "sudo install -d -m 0700 -o root -g root /root/incoming")
    assert _on(home, "object1", "test -w /root/incoming", check=False).returncode != 0  # not the login user's
    sent = _on(home, "controller", "sudo sha256sum /root/payload.bin").stdout.split()[0]
    copied = _lab(home, "copy", "controller:/root/payload.bin", "object1:/root/incoming/", config=TEMPAUTH)
    assert "through this machine" in copied.stdout and f"sha256 {sent}" in copied.stdout
    landed = _on(home, "object1", "sudo sh -c 'sha256sum /root/incoming/payload.bin; "
                                  "stat -c \"%a %U:%G\" /root/incoming/payload.bin'").stdout.split("\n")
    assert landed[0].split()[0] == sent
    assert landed[1].strip() == "640 root:root"


def test_a_tempauth_lab_up_install_verify_down_on_the_twin(tempauth_home):
    home = tempauth_home
    _lab(home, "up", config=TEMPAUTH)
    # only the ports a Swift-only lab uses: no MariaDB, RabbitMQ, etcd or Keystone
    group = _ec2(home).describe_security_groups(
        Filters=[{"Name": "tag:lab:name", "Values": [LAB]}])["SecurityGroups"][0]
    ports = {p.get("FromPort") for p in group["IpPermissions"]}
    assert {8080, 11211, 6200, 873, 123} <= ports and not {3306, 5672, 2379, 5000} & ports

    _copy_between_nodes_into_a_root_owned_folder(home)

    plan = _lab(home, "plan", config=TEMPAUTH)
    assert "left out (auth: tempauth, Swift alone): identity service (Keystone)" in plan.stdout
    install = _lab(home, "install", config=TEMPAUTH)
    assert "installing Swift alone with TempAuth" in install.stdout and "swiftrc files:" in install.stdout
    for which in ("admin", "demo"):
        rc = home / LAB / f"{which}-swiftrc"
        assert stat.S_IMODE(os.stat(rc).st_mode) == 0o600 and "ST_AUTH=http://controller:8080/auth/v1.0" in \
            rc.read_text()
    installed = _on(home, "controller", "dpkg-query -W -f '${Package} ${Status}\\n' keystone mariadb-server "
                                        "rabbitmq-server etcd-server 2>/dev/null | grep -c 'install ok installed'",
                    check=False)
    assert installed.stdout.strip().splitlines()[-1:] == ["0"]  # none of Keystone and its environment

    verify = _lab(home, "verify", config=TEMPAUTH)
    assert re.search(r"\b\d+ passed, 0 failed", verify.stdout)
    assert "tempauth v1 auth /auth/v1.0 (demo)" in verify.stdout

    # a user's own round trip with the TempAuth credentials, checked by sha256
    trip = _on(home, "controller", "sudo sh -c '. /root/demo-swiftrc && cd /tmp && head -c 1M /dev/urandom > t.bin "
                                   "&& swift upload mine t.bin >/dev/null && swift download -o - mine t.bin | "
                                   "sha256sum && sha256sum < t.bin'")
    sums = [line.split()[0] for line in trip.stdout.strip().splitlines()[-2:]]
    assert len(sums) == 2 and sums[0] == sums[1]

    status = _lab(home, "status", config=TEMPAUTH)
    assert "Swift only (auth: tempauth)" in status.stdout
    again = _lab(home, "install", config=TEMPAUTH)
    assert re.search(r"\b0 changed\b", again.stdout), again.stdout

    _lab(home, "down", config=TEMPAUTH)
    assert _eventually(lambda: not any(_traces().values()), timeout=60), _traces()
    assert not list((home / LAB).glob("*-swiftrc"))
