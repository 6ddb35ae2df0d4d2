"""The whole lab, for real, on the local twin of EC2: up, install, verify, install again, down.

Runs the `lab` CLI as a user would (subprocesses, the default config, TARGET=sim) and looks
at the hosts through `lab ssh` and at this machine through ip/losetup/nft/ps. It needs
root and the twin's Debian packages: without them it skips locally, saying why; in CI it
must run (CI=true turns the skip into a failure).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest
import yaml

from lab.hostkeys import host_keys_from_console
from twin.container import find_init, machine_name
from twin.cpu import CpuCgroups

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "lab.yaml"
LAB = "rocky-lab"


def _requirements_missing() -> str | None:
    from twin.client import host_requirements_missing

    reason = host_requirements_missing()
    if reason is None and shutil.which("ssh") is None:
        reason = "needs the OpenSSH client for `lab ssh`"
    return reason


def twin_lab_home(tmp_path_factory, prefix: str):
    """A LAB_HOME for one end-to-end lab on the twin: skipped without the twin's needs (failed in
    CI), and whatever happens in the tests, the lab taken down after."""
    reason = _requirements_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the sim end-to-end test must run in CI but {reason}")
        pytest.skip(reason)
    home = tmp_path_factory.mktemp(prefix) / ".lab"
    yield home
    # Whatever happened above, leave nothing of the twin on this machine.
    _lab(home, "down", check=False)


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory):
    yield from twin_lab_home(tmp_path_factory, "e2e")


# A fresh EC2 host's apt-daily holds the dpkg lock for a while after boot: the twin's does too here.
APT_DAILY_SECONDS = "50"  # longer than the hosts' boot with cloud-init (~30 s) on a loaded machine


def _env(home: Path, config: Path = CONFIG) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(LAB_HOME=str(home), TARGET="sim", CONFIG=str(config), LAB_SIM_APT_DAILY_SECONDS=APT_DAILY_SECONDS)
    return env


def _lab(home: Path, *args: str, check: bool = True, timeout: float = 1800,
         config: Path = CONFIG) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=_env(home, config), text=True,
                          capture_output=True, timeout=timeout)
    elapsed = time.monotonic() - started
    print(f"\n$ lab {' '.join(args)}   [{elapsed:.1f} s, exit {proc.returncode}]\n{proc.stdout}{proc.stderr}")
    if check:
        assert proc.returncode == 0, f"lab {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _on(home: Path, node: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
    return _lab(home, "ssh", node, "--", command, check=check, timeout=120)


def _ec2(home: Path):
    endpoint = (home / "sim" / "endpoint").read_text().strip()
    return boto3.client("ec2", region_name="ap-northeast-2", endpoint_url=endpoint,
                        aws_access_key_id="sim", aws_secret_access_key="sim")


def _icmp_self_rule(ec2) -> tuple[str, dict]:
    group = ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": [LAB]}])["SecurityGroups"][0]
    rule = {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
            "UserIdGroupPairs": [{"GroupId": group["GroupId"]}]}
    return group["GroupId"], rule


def _ping_ok(home: Path, ip: str) -> bool:
    return _on(home, "controller", f"ping -c 1 -W 1 {ip}", check=False).returncode == 0


def _eventually(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(1)
    return False


def _traces() -> dict[str, list[str]]:
    """What of the twin is visible on this machine."""
    def lines(cmd):
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line.strip()]

    return {
        "netns": [n for n in lines(["ip", "netns", "list"]) if n.startswith("lab-")],
        "loop": [l for l in lines(["losetup", "-a"]) if "/sim/" in l],
        "nft": [t for t in lines(["nft", "list", "tables"]) if "lab_sim" in t],
        # A killed daemon's nspawn children are reaped by PID 1, whenever it gets to it:
        # a <defunct> entry is a dead process holding nothing, not a trace of the lab.
        "processes": [p for p in lines(["ps", "-eo", "pid,args"])
                      if ("systemd-nspawn" in p or "twin.daemon" in p) and "<defunct>" not in p],
        "cgroups": _cgroups(),
    }


def _cgroups() -> list[str]:
    """The twin's cpu cgroup parent and every cgroup left in it."""
    parent = CpuCgroups().parent
    if parent is None or not parent.is_dir():
        return []
    return [str(parent)] + sorted(str(p) for p in parent.iterdir() if p.is_dir())


def _assert_cpu_weights_follow_instance_size(home: Path, inventory: dict) -> None:
    """t3.large controller, t3.medium object nodes: twice the weight, each container's init inside."""
    cpu = CpuCgroups()
    if cpu.parent is None:
        print("no cgroup cpu controller on this machine: the instances share the CPU equally")
        return
    weights = {}
    for node in inventory["nodes"]:
        cgroup = cpu.path(machine_name(node["instance_id"]))
        weights[node["name"]] = int((cgroup / cpu.scale.file).read_text())
        nspawn = int((home / "sim" / "bodies" / node["instance_id"] / "nspawn.pid").read_text())
        procs = (cgroup / "cgroup.procs").read_text().split()
        assert str(nspawn) in procs and str(find_init(nspawn)) in procs, (node["name"], procs)
    assert weights["controller"] == 2 * weights["object1"] == 2 * weights["object2"], weights


def _assert_host_keys_pinned_from_the_console(home: Path, inventory: dict) -> None:
    """known_hosts holds exactly the keys each instance's console printed (cloud-init's block), and SSH is strict."""
    ec2 = _ec2(home)
    pinned = (home / LAB / "known_hosts").read_text()
    for node in inventory["nodes"]:
        # botocore hands Output over decoded; the key lines carry a prefix, as on EC2 ("<14>... ec2: ssh-ed25519 ...")
        keys = set(host_keys_from_console(ec2.get_console_output(InstanceId=node["instance_id"]).get("Output", "")))
        assert keys and keys == {" ".join(line.split()[1:3]) for line in pinned.splitlines()
                                 if line.split()[:1] == [node["ssh_host"]]}, node["name"]
    assert (home / LAB / "ssh_config").read_text().count("StrictHostKeyChecking yes") == len(inventory["nodes"])


def _assert_booted_by_cloud_init(home: Path, inventory: dict) -> None:
    """The real cloud-init booted every host from the twin's metadata service: it made the login user
    (its log says so), ran the user data given at launch (the expiry's bootcmd, on the console) and
    printed the keys that were pinned; 169.254.169.254 is nowhere on this machine's own network."""
    ec2 = _ec2(home)
    for node in inventory["nodes"]:
        done = _on(home, node["name"], "cloud-init status --long; sudo grep -c 'Adding user admin' /var/log/cloud-init.log")
        assert "status: done" in done.stdout and done.stdout.split()[-1] == "1", done.stdout
        console = ec2.get_console_output(InstanceId=node["instance_id"]).get("Output", "")
        assert "Datasource DataSourceEc2." in console and "openstack-ec2-lab: powering off at" in console, node["name"]
    here = subprocess.run(["sh", "-c", "ip -4 addr; ip -4 route show table all"], capture_output=True, text=True).stdout
    assert "169.254.169.254" not in here


def _sha256_of_object(home: Path, container: str, name: str) -> str:
    got = _on(home, "controller", f"sudo sh -c '. /root/demo-openrc && cd /tmp && swift download -o - {container} {name}"
                                  f" | sha256sum'")
    return got.stdout.split()[0]


def test_lab_up_install_verify_down_on_the_twin(lab_home):
    up = _lab(lab_home, "up")
    assert "Debian 12" in up.stdout
    # the config says ubuntu-18.04: the twin says in one line that it runs Debian 12 and what to write
    assert "the twin boots only Debian 12" in up.stdout and "`openstack: {os: debian-12}`" in up.stdout
    # first boot: the lab waited for the twin's apt-daily to let go of the dpkg lock, naming it
    # (lines are wrapped at the terminal width: the check reads them as one text)
    assert re.search(r"waiting \d+ s .* is held by apt\.systemd\.dai", " ".join(up.stdout.split())), up.stdout
    status = json.loads(_lab(lab_home, "status", "--json").stdout)
    assert status["endpoint_url"].startswith("http://127.0.0.1:")
    assert sorted(i["state"] for i in status["instances"]) == ["running"] * 3
    assert "bookworm" in _on(lab_home, "controller", "cat /etc/os-release").stdout
    inventory = yaml.safe_load((lab_home / LAB / "inventory.yaml").read_text())
    ips = {node["name"]: node["private_ip"] for node in inventory["nodes"]}
    assert set(ips) == {"controller", "object1", "object2"}
    _assert_cpu_weights_follow_instance_size(lab_home, inventory)

    # Every Swift volume: XFS, mounted at /srv/node/<name>, in fstab by UUID with nofail, findmnt clean.
    for node in ("object1", "object2"):
        for device in ("sdb", "sdc"):
            fstype = _on(lab_home, node, f"findmnt -n -o FSTYPE /srv/node/{device}").stdout.strip()
            assert fstype == "xfs"
        fstab = _on(lab_home, node, "cat /etc/fstab").stdout
        assert len(re.findall(r"^UUID=\S+ /srv/node/sd[bc] xfs \S*nofail", fstab, re.M)) == 2
        assert "nobarrier" not in fstab
        assert "Success, no errors or warnings detected" in _on(lab_home, node, "sudo findmnt --verify").stdout

    _assert_host_keys_pinned_from_the_console(lab_home, inventory)
    _assert_booted_by_cloud_init(lab_home, inventory)

    _lab(lab_home, "install")
    # done means the cloud serves: a user's first upload, right away, works the first time
    first = _on(lab_home, "controller", "sudo sh -c '. /root/demo-openrc && cd /etc && swift upload first-try hostname'")
    assert first.returncode == 0 and "hostname" in first.stdout
    verify = _lab(lab_home, "verify")
    assert re.search(r"\b\d+ passed, 0 failed", verify.stdout)

    # OpenStack's own tests: Tempest's identity v3 / admin v3 / object storage API tests and the
    # "OpenStack Powered Storage" guideline's required tests, no failure, every skip deliberate
    tempest = _lab(lab_home, "verify", "--tempest", timeout=3600)
    assert "OpenStack Powered Storage 2019.11: 58 passed, 0 failed, 0 skipped" in tempest.stdout, tempest.stdout[-4000:]
    assert re.search(r"identity v3, identity admin v3 and object storage API: \d+ passed, 0 failed, \d+ skipped "
                     r"\(all listed as deliberate\)", tempest.stdout), tempest.stdout[-4000:]
    assert (lab_home / LAB / "tempest" / "results.subunit").stat().st_size > 0
    assert 'id="conformance"' in (lab_home / LAB / "report.html").read_text()
    # a small load from the controller, connections reused as real clients do: no request fails
    load = _on(lab_home, "controller", "sudo python3 /usr/local/lib/openstack-ec2-lab/cloud_load.py "
                                       "/root/demo-openrc 15 4")
    found = json.loads(load.stdout.strip().splitlines()[-1])
    print(f"cloud load, 4 clients for 15 s: {found}")
    assert found["errors"] == 0 and found["requests"] > 0, found

    again = _lab(lab_home, "install")
    assert re.search(r"\b0 changed\b", again.stdout), again.stdout
    report = lab_home / LAB / "report.html"
    assert report.exists() and "controller" in report.read_text() and "object2" in report.read_text()

    # operate on many nodes at once: run, copy both ways, logs of every host in one archive
    ran = _lab(lab_home, "run", "--", "hostname")
    assert all(node in ran.stdout for node in ("controller", "object1", "object2"))
    assert _lab(lab_home, "run", "--role", "object", "--", "false", check=False).returncode == 1
    sent = lab_home.parent / "sent.txt"
    sent.write_text("copied by lab copy\n")
    _lab(lab_home, "copy", str(sent), "object2:/root/sent.txt")
    back = lab_home.parent / "back.txt"
    _lab(lab_home, "copy", "object2:/root/sent.txt", str(back))
    assert back.read_text() == sent.read_text()
    logs = _lab(lab_home, "logs")
    archive = Path(re.search(r"(/\S+\.tar\.gz)", logs.stdout).group(1))
    with tarfile.open(archive) as tar:
        hosts = {name.split("/")[0] for name in tar.getnames()}
    assert {"controller", "object1", "object2"} <= hosts

    # --check: nothing would change; a hand edit is named with its diff, and `lab install` puts it back
    assert _lab(lab_home, "install", "--check").returncode == 0
    _on(lab_home, "object1", "echo '# edited by hand' | sudo tee -a /etc/rsyncd.conf >/dev/null")
    check = _lab(lab_home, "install", "--check", check=False)
    assert check.returncode == 3 and "swift-rsync" in check.stdout and "# edited by hand" in check.stdout
    _lab(lab_home, "install")
    assert "edited by hand" not in _on(lab_home, "object1", "cat /etc/rsyncd.conf").stdout
    assert _lab(lab_home, "install", "--check").returncode == 0

    # a reboot of every node through the EC2 API leaves the lab working, its data intact
    _on(lab_home, "controller", "sudo sh -c 'head -c 1M /dev/urandom > /root/kept.bin && . /root/demo-openrc && "
                                "cd /root && swift upload kept kept.bin >/dev/null'")
    stored = _on(lab_home, "controller", "sudo sha256sum /root/kept.bin").stdout.split()[0]
    started = time.monotonic()
    _lab(lab_home, "reboot")
    after_reboot = _lab(lab_home, "verify")
    print(f"reboot to a verified lab: {time.monotonic() - started:.1f} s")
    assert re.search(r"\b\d+ passed, 0 failed", after_reboot.stdout)
    for node in ("object1", "object2"):
        for device in ("sdb", "sdc"):
            assert _on(lab_home, node, f"findmnt -n -o FSTYPE /srv/node/{device}").stdout.strip() == "xfs"
    assert _sha256_of_object(lab_home, "kept", "kept.bin") == stored
    # cloud-init ran again at the reboot (manage_etc_hosts: true on the image), yet the lab's block in
    # /etc/hosts is there: the lab's drop-in; and no per-instance module (the user) ran twice
    hosts = _on(lab_home, "controller", "cat /etc/hosts; sudo grep -c 'Adding user admin' /var/log/cloud-init.log")
    assert ips["object1"] in hosts.stdout and ips["object2"] in hosts.stdout, hosts.stdout
    assert hosts.stdout.split()[-1] == "1"

    # The self-referencing all-ICMP rule is what lets the nodes ping each other.
    ec2 = _ec2(lab_home)
    group_id, rule = _icmp_self_rule(ec2)
    assert _ping_ok(lab_home, ips["object1"])
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[rule])
    assert _eventually(lambda: not _ping_ok(lab_home, ips["object1"])), "ping still works without the ICMP rule"
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule])
    assert _eventually(lambda: _ping_ok(lab_home, ips["object1"])), "ping did not come back with the ICMP rule"

    _lab(lab_home, "down")
    assert _eventually(lambda: not any(_traces().values()), timeout=60), _traces()
    left = sorted(p.name for p in (lab_home / LAB).iterdir()) if (lab_home / LAB).exists() else []
    # What stays is this machine's own record: the lock file (it is the lock), the install logs and
    # report, the `lab logs` archive, Tempest's results; every key, secret, inventory and ssh file is gone.
    assert {p for p in left if not p.startswith("logs-")} <= {"logs", "lock", "report.html", "report.json",
                                                               "tempest"}, left
    second = _lab(lab_home, "down")
    assert "nothing" in second.stdout


EXPIRING = """\
name: expiring-lab
region: ap-northeast-2
openstack: {release: rocky, os: debian-12}
expires_after: 2m
nodes:
  controller: {role: controller, type: t3.small}
  object1: {role: object, type: t3.small, volumes: {sdb: 1}}
"""


def _ends_by_itself(home: Path, config: Path, name: str) -> float:
    """Wait until lab `name` has no instance left and is expired, and every volume tagged with it is
    gone or going (DeleteOnTermination); the seconds it took."""
    def gone() -> bool:
        rows = json.loads(_lab(home, "list", "--json", config=config).stdout)
        row = next((r for r in rows if r["name"] == name), None)
        return row is not None and row["nodes"] == 0 and row["expired"]

    started = time.monotonic()
    assert _eventually(gone, timeout=300), f"the instances of {name} are still there"
    left = _ec2(home).describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": [name]}])["Volumes"]
    assert [v for v in left if v["State"] not in ("deleting", "deleted")] == []
    return time.monotonic() - started


def test_a_lab_whose_time_is_up_terminates_itself_and_its_volumes(lab_home, tmp_path):
    """The hosts' own timer powers them off; the twin, as EC2, terminates them (shutdown behaviour
    terminate) and deletes their DeleteOnTermination volumes; `lab down --expired` takes the rest."""
    config = tmp_path / "expiring.yaml"
    config.write_text(EXPIRING)
    up = _lab(lab_home, "up", config=config)
    assert "expires" in up.stdout and "warning" not in up.stdout
    ec2 = _ec2(lab_home)
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": ["expiring-lab"]}])["Volumes"]
    assert len(volumes) == 3  # two root volumes and the Swift volume

    seconds = _ends_by_itself(lab_home, config, "expiring-lab")
    print(f"expired lab terminated itself {seconds:.0f} s after `lab up` returned")
    down = _lab(lab_home, "down", "--expired", config=config)
    assert "expiring-lab" in down.stdout and LAB not in down.stdout.replace("expiring-lab", "")
    rows = json.loads(_lab(lab_home, "list", "--json", config=config).stdout)
    assert all(r["name"] != "expiring-lab" for r in rows)
    _lab(lab_home, "down", config=config)  # forgets the lab here; nothing is left to remove
    assert _eventually(lambda: not any(_traces().values()), timeout=60), _traces()


def test_a_lab_whose_up_stops_right_after_launching_still_ends_at_its_expiry(lab_home, tmp_path):
    """issue 20: `lab up --no-ssh` returns right after RunInstances, as an `up` killed there would:
    no host was ever logged into, so no expiry timer was installed over SSH. The launch's user
    data alone (real cloud-init's bootcmd on each body) powers the hosts off at lab:expires-at,
    and the twin, as EC2, terminates them and their DeleteOnTermination volumes."""
    config = tmp_path / "forgotten.yaml"
    config.write_text(EXPIRING.replace("expiring-lab", "forgotten-lab"))
    up = _lab(lab_home, "up", "--no-ssh", config=config)
    assert "no host was contacted" in up.stdout
    seconds = _ends_by_itself(lab_home, config, "forgotten-lab")
    print(f"forgotten lab (no SSH ever) ended itself {seconds:.0f} s after `lab up --no-ssh`")
    _lab(lab_home, "down", "--expired", config=config)
    _lab(lab_home, "down", config=config)
    assert _eventually(lambda: not any(_traces().values()), timeout=60), _traces()


def test_down_cleans_everything_after_the_daemon_died(lab_home):
    _lab(lab_home, "up", "--no-ssh")
    pid = int((lab_home / "sim" / "daemon.pid").read_text())
    assert _eventually(lambda: len([p for p in _traces()["processes"] if "systemd-nspawn" in p]) == 3, timeout=120)
    os.kill(pid, signal.SIGKILL)
    _lab(lab_home, "down")
    assert _eventually(lambda: not any(_traces().values()), timeout=30), _traces()
