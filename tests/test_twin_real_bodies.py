"""The twin's bodies on the real kernel behave like fresh EC2 hosts: the real cloud-init reads
the twin's metadata service after a lease from its DHCP server (the login user, the
hostname, the user data), their console
shows the keys sshd presents as cloud-init printed them, apt's daily job holds the dpkg
locks after the first boot, a reboot (RebootInstances or `systemctl reboot`) keeps disk,
volumes, address and fstab mounts and runs no per-instance module again, and a body that
powers itself off is an instance-initiated shutdown (terminate or stop).

Drives the twin's EC2 API with boto3 and looks into the containers with nsenter; one small
body per test. Needs root and the twin's Debian packages, like tests/test_e2e_sim.py: it
skips without them locally and fails in CI (CI=true).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.hostkeys import host_keys_from_console

pytestmark = pytest.mark.e2e

REGION = "ap-northeast-2"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz"
LAB = "twin-bodies"
APT_DAILY_SECONDS = 20


@dataclass
class Twin:
    ec2: object
    folder: Path  # the twin's state folder
    group_id: str
    subnet: dict
    anchor: str = ""  # an instance that keeps the lab, and so the daemon, alive between the tests


def _eventually(predicate, timeout: float, poke=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if poke:
            poke()
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    from twin.client import host_requirements_missing

    reason = host_requirements_missing() or (None if shutil.which("ssh-keyscan") else "needs ssh-keyscan")
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the twin's real-kernel tests must run in CI but {reason}")
        pytest.skip(reason)
    from twin import client, server
    from twin.target import state_dir

    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAB_HOME", str(tmp_path_factory.mktemp("bodies") / ".lab"))
        env.setenv("LAB_SIM_APT_DAILY_SECONDS", str(APT_DAILY_SECONDS))  # reaches the daemon it starts
        url = client.ensure_running(state_dir(), REGION)
        ec2 = server.ec2_client(url, REGION)
        subnet = ec2.describe_subnets()["Subnets"][0]
        ec2.import_key_pair(KeyName=LAB, PublicKeyMaterial=KEY.encode())
        group = ec2.create_security_group(GroupName=LAB, Description="ssh from this machine",
                                          VpcId=subnet["VpcId"])["GroupId"]
        gateway = subnet["CidrBlock"].split(".")[:3] + ["1"]  # the bridge holds the subnet's first address
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": ".".join(gateway) + "/32"}]}])
        found = Twin(ec2, state_dir(), group, subnet)
        try:
            found.anchor = _launch(found, "anchor")[0]
            yield found
        finally:
            client.stop(state_dir())


def _launch(twin: Twin, node: str, *, behaviour: str | None = None, volume_gb: int = 0,
            user_data: str | None = None) -> tuple[str, str | None]:
    from twin import server

    extra: dict = {"InstanceInitiatedShutdownBehavior": behaviour} if behaviour else {}
    if user_data is not None:
        extra["UserData"] = user_data  # boto3 sends it base64-encoded
    tags = [{"Key": "lab:name", "Value": LAB}, {"Key": "lab:node", "Value": node}, {"Key": "lab:ssh-user", "Value": "admin"}]
    iid = twin.ec2.run_instances(
        ImageId=server.ensure_image(twin.ec2.meta.endpoint_url, REGION), MinCount=1, MaxCount=1, KeyName=LAB,
        InstanceType="t3.medium", SubnetId=twin.subnet["SubnetId"], SecurityGroupIds=[twin.group_id],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"}, **extra)["Instances"][0]["InstanceId"]
    volume = None
    if volume_gb:  # as `lab up` attaches a Swift volume: AttachVolume, then DeleteOnTermination
        volume = twin.ec2.create_volume(Size=volume_gb, AvailabilityZone=twin.subnet["AvailabilityZone"])["VolumeId"]
        twin.ec2.attach_volume(VolumeId=volume, InstanceId=iid, Device="/dev/sdf")
        twin.ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    return iid, volume


def _nspawn(twin: Twin, iid: str) -> int | None:
    from twin.container import is_nspawn

    try:
        pid = int((twin.folder / "bodies" / iid / "nspawn.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if is_nspawn(pid) else None


def _inside(twin: Twin, iid: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    from twin.container import find_init

    init = find_init(_nspawn(twin, iid))
    done = subprocess.run(["nsenter", "-t", str(init), "-a", "--", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert done.returncode == 0, f"{script}: {done.stdout}{done.stderr}"
    return done


def _booted(twin: Twin, iid: str, timeout: float = 120) -> None:
    """Up as a host is up: a container whose systemd has finished booting, every unit fine."""
    state: list[str] = []

    def up() -> bool:
        if _nspawn(twin, iid) is None:
            return False
        state[:] = [_inside(twin, iid, "systemctl is-system-running 2>/dev/null || true", check=False).stdout.strip()]
        return state[0] in ("running", "degraded")

    assert _eventually(up, timeout), f"{iid} did not boot within {timeout:.0f} s"
    failed = _inside(twin, iid, "systemctl --failed --plain --no-legend", check=False).stdout
    assert state == ["running"], f"{iid} booted {state}: {failed}"


def _state(twin: Twin, iid: str) -> str:
    return twin.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _poke(twin: Twin):
    return lambda: twin.ec2.describe_regions()  # a client's request: the daemon reconciles at once


def _ip(twin: Twin, iid: str) -> str:
    return twin.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]


def _terminate(twin: Twin, iid: str) -> None:
    twin.ec2.terminate_instances(InstanceIds=[iid])
    assert _eventually(lambda: not (twin.folder / "bodies" / iid).exists(), 60, _poke(twin))


# ------------------------------------------------------------------ console
def test_console_shows_after_the_boot_lines_the_keys_sshd_presents(twin):
    iid, _ = _launch(twin, "controller")
    seen: list[str] = []

    def keys_shown() -> bool:
        seen.append(twin.ec2.get_console_output(InstanceId=iid).get("Output", ""))
        return bool(host_keys_from_console(seen[-1]))

    assert _eventually(keys_shown, 120), seen[-1][-2000:]
    text = seen[-1]
    # cloud-init's own output: the keys it made, named after the hostname the metadata service gave
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in text
    assert re.search(r"root@ip-\d+-\d+-\d+-\d+ \(ED25519\)", text), text[-3000:]
    assert re.search(r"Cloud-init v\. \S+ running 'init'", text)
    assert text.index("Reached target") < text.index("-----BEGIN SSH HOST KEY KEYS-----")  # boot lines first
    assert not any(host_keys_from_console(earlier) for earlier in seen[:-1])
    scanned = subprocess.run(["ssh-keyscan", "-T", "10", _ip(twin, iid)], capture_output=True, text=True,
                             check=False).stdout
    presented = sorted(" ".join(line.split()[1:3]) for line in scanned.splitlines() if line and not line.startswith("#"))
    assert presented and presented == sorted(host_keys_from_console(text))
    _terminate(twin, iid)


# ------------------------------------------------------------------ cloud-init, from the metadata service
USER_DATA = """Content-Type: multipart/mixed; boundary="==lab=="
MIME-Version: 1.0

--==lab==
Content-Type: text/cloud-config; charset="us-ascii"

#cloud-config
write_files:
  - path: /root/written-by-user-data
    content: from write_files
bootcmd:
  - echo boot >> /root/bootcmd-runs
runcmd:
  - echo run >> /root/runcmd-runs
--==lab==
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/sh
echo script >> /root/script-runs
--==lab==--
"""
HAND_HOSTS = "echo '172.31.9.9 by-hand' >> /etc/hosts"


def _cloud_init_done(twin: Twin, iid: str) -> str:
    return _inside(twin, iid, "cloud-init status --wait --long; cat /root/written-by-user-data; echo; "
                              "wc -l < /root/bootcmd-runs; wc -l < /root/runcmd-runs; wc -l < /root/script-runs; "
                              "grep -c 'Adding user admin' /var/log/cloud-init.log; "
                              "grep -c 'by-hand' /etc/hosts || true").stdout


def _reboot(twin: Twin, iid: str) -> None:
    before = _nspawn(twin, iid)
    twin.ec2.reboot_instances(InstanceIds=[iid])
    assert _eventually(lambda: _nspawn(twin, iid) not in (None, before), 60, _poke(twin)), "no new container"
    _booted(twin, iid)


def test_cloud_init_makes_the_user_and_runs_the_user_data_once_per_instance(twin):
    from bootstrap.components.base import CLOUD_INIT_DROP_IN, CLOUD_INIT_KEEPS_NAMES

    iid, _ = _launch(twin, "cloudy", user_data=USER_DATA)
    _booted(twin, iid)
    out = _cloud_init_done(twin, iid)
    assert "status: done" in out, out
    # write_files, bootcmd, runcmd and the shell script ran; the admin user is cloud-init's own
    assert out.split("\n")[-7:-1] == ["from write_files", "1", "1", "1", "1", "0"], out
    assert KEY.split()[1] in _inside(twin, iid, "cat /home/admin/.ssh/authorized_keys").stdout  # the key pair's
    assert "sudo" in _inside(twin, iid, "id -nG admin").stdout.split()
    assert _inside(twin, iid, "hostname").stdout.strip().startswith("ip-")  # local-hostname from the metadata
    assert _inside(twin, iid, "cloud-init query cloud_name").stdout.strip() == "aws"  # IMDSv2, as on EC2
    # As on EC2, the local stage's first question is DHCP, on eth0, which carries the ENI's MAC:
    # the twin's DHCP server (dnsmasq) leases it the instance's private address at once.
    instance = twin.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert _inside(twin, iid, "cat /sys/class/net/eth0/address").stdout.strip() == \
        instance["NetworkInterfaces"][0]["MacAddress"]
    log_text = _inside(twin, iid, "cat /var/log/cloud-init.log").stdout
    assert f"Received dhcp lease on eth0 for {instance['PrivateIpAddress']}/" in log_text, log_text[-2000:]

    # A reboot: cloud-init runs again, bootcmd (every boot) too, per-instance modules do not;
    # manage_etc_hosts writes /etc/hosts again, so a block added by hand is gone.
    _inside(twin, iid, HAND_HOSTS)
    _reboot(twin, iid)
    out = _cloud_init_done(twin, iid)
    assert out.split("\n")[-7:-1] == ["from write_files", "2", "1", "1", "1", "0"], out
    # With the lab's drop-in (manage_etc_hosts: false, read last), the block survives the reboot.
    (twin.folder / "bodies" / iid / "root" / CLOUD_INIT_DROP_IN.lstrip("/")).write_text(CLOUD_INIT_KEEPS_NAMES)
    _inside(twin, iid, HAND_HOSTS)
    _reboot(twin, iid)
    out = _cloud_init_done(twin, iid)
    assert out.split("\n")[-7:-1] == ["from write_files", "3", "1", "1", "1", "1"], out
    _terminate(twin, iid)


# ------------------------------------------------------------------ apt's daily job at the first boot
def test_apt_daily_holds_the_dpkg_locks_for_a_while_after_the_first_boot(twin):
    iid, _ = _launch(twin, "object1")
    assert _eventually(lambda: _nspawn(twin, iid) is not None, 60)
    _booted(twin, iid)
    started = time.monotonic()
    held = _inside(twin, iid, "dpkg --configure -a", check=False)
    assert held.returncode != 0 and "dpkg frontend lock was locked by another process" in held.stderr
    holder = re.search(r"pid (\d+)", held.stderr).group(1)
    assert _inside(twin, iid, f"cat /proc/{holder}/comm").stdout.strip() == "apt.systemd.dai"
    assert _eventually(lambda: _inside(twin, iid, "dpkg --configure -a", check=False).returncode == 0,
                       APT_DAILY_SECONDS + 20)
    assert time.monotonic() - started < APT_DAILY_SECONDS + 20
    _terminate(twin, iid)


# ------------------------------------------------------------------ reboots
PREPARE = """set -e
mkfs.ext4 -q /dev/nvme1n1  # the image has no xfsprogs (the lab installs it), as on AWS
mkdir -p /srv/node/sdb
echo "UUID=$(blkid -o value -s UUID /dev/nvme1n1) /srv/node/sdb ext4 noatime,nofail 0 0" >> /etc/fstab
mount /srv/node/sdb
echo object > /srv/node/sdb/object
echo overlay > /root/marker
printf '[Unit]\\nDescription=enabled before the reboot\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/lab-e2e.service
systemctl enable --now lab-e2e.service 2>/dev/null
"""
AFTER = ("cat /root/marker /srv/node/sdb/object; findmnt -n -o SOURCE,FSTYPE /srv/node/sdb; "
         "readlink /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{volume}; systemctl is-active lab-e2e ssh; "
         "ip -4 -o addr show eth0")


def _console_boots(twin: Twin, iid: str) -> tuple[int, int, list[str]]:
    """cloud-init's runs of its init stage, its key blocks, the keys: from the console."""
    text = twin.ec2.get_console_output(InstanceId=iid).get("Output", "")
    return (len(re.findall(r"Cloud-init v\. \S+ running 'init' ", text)), text.count("-----END SSH HOST KEY KEYS-----"),
            host_keys_from_console(text))


def _rebooted_keeps_everything(twin: Twin, iid: str, volume: str, before: int, ip: str) -> None:
    runs, blocks, keys = _console_boots(twin, iid)
    assert _eventually(lambda: _nspawn(twin, iid) not in (None, before), 60, _poke(twin)), "no new container"
    _booted(twin, iid)
    # cloud-init ran again; its keys-to-console module is per instance, so the keys are printed once
    assert _eventually(lambda: _console_boots(twin, iid) == (runs + 1, blocks, keys), 60), _console_boots(twin, iid)
    out = _inside(twin, iid, AFTER.format(volume=volume.replace("-", ""))).stdout.split()
    assert out[:4] == ["overlay", "object", "/dev/nvme1n1", "ext4"], out
    assert out[4] == "../../nvme1n1" and out[5:7] == ["active", "active"], out
    assert f"{ip}/" in " ".join(out[7:]), out
    assert _state(twin, iid) == "running"


def test_a_reboot_keeps_disk_volumes_address_and_mounts_its_fstab(twin):
    iid, volume = _launch(twin, "object2", volume_gb=1)
    _booted(twin, iid)
    _inside(twin, iid, PREPARE)
    ip = _ip(twin, iid)

    before = _nspawn(twin, iid)
    twin.ec2.reboot_instances(InstanceIds=[iid])
    _rebooted_keeps_everything(twin, iid, volume, before, ip)

    before = _nspawn(twin, iid)
    _inside(twin, iid, "systemctl reboot", check=False)  # from inside the host, as `lab install` may
    _rebooted_keeps_everything(twin, iid, volume, before, ip)
    _terminate(twin, iid)


# ------------------------------------------------------------------ shutdowns
def test_a_body_that_powers_off_with_behaviour_terminate_is_terminated_with_its_volume(twin):
    iid, volume = _launch(twin, "expiring", behaviour="terminate", volume_gb=1)
    _booted(twin, iid)
    volume_file = twin.folder / "volumes" / f"{volume}.img"
    assert volume_file.exists()

    _inside(twin, iid, "systemd-run --on-active=2 /bin/systemctl poweroff")  # a timer, as the lab's expiry

    assert _eventually(lambda: _state(twin, iid) == "terminated", 60, _poke(twin)), _state(twin, iid)
    assert volume not in {v["VolumeId"] for v in twin.ec2.describe_volumes()["Volumes"]}
    assert _eventually(lambda: not (twin.folder / "bodies" / iid).exists() and not volume_file.exists(), 30,
                       _poke(twin))
    loops = subprocess.run(["losetup", "-j", str(volume_file)], capture_output=True, text=True, check=True).stdout
    assert loops == ""


def test_a_body_that_shuts_down_with_behaviour_stop_is_stopped_kept_and_started_again(twin):
    iid, volume = _launch(twin, "stopping", volume_gb=1)
    _booted(twin, iid)
    _inside(twin, iid, "echo kept > /root/marker")

    _inside(twin, iid, "shutdown -h now", check=False)

    assert _eventually(lambda: _state(twin, iid) == "stopped", 60, _poke(twin)), _state(twin, iid)
    saved = twin.folder / "bodies" / iid / "body.json"
    assert _eventually(lambda: json.loads(saved.read_text())["running"] is False, 30, _poke(twin))
    assert _nspawn(twin, iid) is None and (twin.folder / "volumes" / f"{volume}.img").exists()
    assert {v["State"] for v in twin.ec2.describe_volumes(VolumeIds=[volume])["Volumes"]} == {"in-use"}

    twin.ec2.start_instances(InstanceIds=[iid])
    _booted(twin, iid)
    assert _inside(twin, iid, "cat /root/marker; ls /dev/nvme1n1").stdout.split() == ["kept", "/dev/nvme1n1"]
    _terminate(twin, iid)


def test_a_body_killed_otherwise_leaves_its_instance_running_as_a_crashed_host(twin):
    from twin.container import find_init

    iid, _ = _launch(twin, "crashing", behaviour="terminate")
    _booted(twin, iid)
    os.kill(find_init(_nspawn(twin, iid)), signal.SIGKILL)
    assert _eventually(lambda: _nspawn(twin, iid) is None, 20)
    _poke(twin)()
    time.sleep(2)  # a pass that would have acted on it has run
    assert _state(twin, iid) == "running" and (twin.folder / "bodies" / iid / "body.json").exists()
    _terminate(twin, iid)


def test_nothing_of_the_twin_is_left_once_its_labs_are_gone(twin):
    from twin import client

    twin.ec2.terminate_instances(InstanceIds=[twin.anchor])
    client.wait_until_gone(twin.folder, timeout=60, progress=print)
    assert client.daemon_pid(twin.folder) is None
    def run(*argv: str) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout

    netns, loops, tables = run("ip", "netns", "list"), run("losetup", "-a"), run("nft", "list", "tables")
    nspawn = run("pgrep", "-af", f"systemd-nspawn.*{twin.folder}")
    dnsmasq = run("pgrep", "-af", f"dnsmasq.*{twin.folder}")
    assert ("lab-" not in netns, str(twin.folder) not in loops, "lab_sim" not in tables, nspawn, dnsmasq) == (
        True, True, True, "", ""), (netns, loops, tables, nspawn, dnsmasq)
