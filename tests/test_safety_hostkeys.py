"""Host keys out of band: read from the instance's console (GetConsoleOutput), pinned before any SSH.

The parser is fed consoles as Ubuntu 18.04 and Debian 12 print them on EC2 (kernel lines with
timestamps, cloud-init's prefixes, the fingerprints block, several boots); the wait, the pinning
and the ssh_config run against moto with the console injected by a botocore hook. No test
connects to any host.
"""

from __future__ import annotations

import base64
import os
import time

import boto3
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from moto import mock_aws
from plan_fixtures import inventory as guide_inventory
from test_safety_support import REGION, Faults, share_botocore_session

from lab import hostkeys
from lab.ssh import FabricRemote, _RecordFirstContact
from lab.sshconfig import write_ssh_config
from lab.target import AwsTarget
from labcore.errors import CloudError
from labcore.paths import LabPaths


def host_keys(host: str) -> dict[str, str]:
    """A host's fresh public keys as /etc/ssh/ssh_host_*_key.pub hold them: type -> "type base64 root@host"."""
    keys = {"ecdsa-sha2-nistp256": ec.generate_private_key(ec.SECP256R1()),
            "ssh-ed25519": ed25519.Ed25519PrivateKey.generate(),
            "ssh-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
    return {kind: key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode() + f" root@{host}"
            for kind, key in keys.items()}


def pinned(keys: dict[str, str]) -> list[str]:
    """What the parser returns for these keys: "type base64", ed25519 first."""
    return [" ".join(keys[t].split()[:2]) for t in ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")]


def ubuntu_1804_console(keys: dict[str, str], host: str = "ip-172-31-0-4") -> str:
    """An Ubuntu 18.04 first boot on a t3 instance, shortened: cloud-init 19.x, fingerprints via `logger -s`."""
    return f"""[    0.000000] Linux version 4.15.0-1057-aws (buildd@lgw01-amd64-044) (gcc version 7.4.0 (Ubuntu 7.4.0-1ubuntu1~18.04.1)) #59-Ubuntu SMP Wed Dec 4 10:02:00 UTC 2019 (Ubuntu 4.15.0-1057.59-aws 4.15.18)
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-4.15.0-1057-aws root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0 nvme_core.io_timeout=4294967295
[    1.276354] nvme nvme0: 2/0/0 default/read/poll queues
[   13.940000] cloud-init[779]: Cloud-init v. 19.3-44-gbae9b11d-0ubuntu1~18.04.1 running 'init' at Tue, 14 Jan 2020 10:21:43 +0000. Up 13.94 seconds.
[   14.541016] cloud-init[779]: ci-info: +++++++++++++++++++++++++++Net device info++++++++++++++++++++++++++++
[   16.231235] cloud-init[779]: Generating public/private rsa key pair.
[   16.237362] cloud-init[779]: Your identification has been saved in /etc/ssh/ssh_host_rsa_key.
[   16.245710] cloud-init[779]: The key fingerprint is:
[   16.247114] cloud-init[779]: SHA256:Vj5yQ3C0a0Hn3Zr0tq4l5kq1c6P9lYy4cWm9o2bG7uE root@{host}

Ubuntu 18.04.3 LTS {host} ttyS0

{host} login: [   20.130213] cloud-init[1058]: Cloud-init v. 19.3-44-gbae9b11d-0ubuntu1~18.04.1 running 'modules:final' at Tue, 14 Jan 2020 10:21:50 +0000. Up 20.05 seconds.
ci-info: no authorized ssh keys fingerprints found for user ubuntu.
ec2: 
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 1024 SHA256:8a3w0sR0D1WnqDK2t+3CwJ4Z2iS3Cq0dh2dQ7Vh0gXk root@{host} (DSA)
ec2: 256 SHA256:Q4u8Qk6v6QK8yq1hB2cQm2TqYpJwqv0+u8cS9cJm1Xo root@{host} (ECDSA)
ec2: 256 SHA256:3f0Ue8mS7eK3JwYV4Ckp0gq6Zr3J0x2d6i6gJb3o1Qw root@{host} (ED25519)
ec2: 2048 SHA256:Vj5yQ3C0a0Hn3Zr0tq4l5kq1c6P9lYy4cWm9o2bG7uE root@{host} (RSA)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
{keys["ecdsa-sha2-nistp256"]}
[   20.601002] random: crng init done
{keys["ssh-ed25519"]}
{keys["ssh-rsa"]}
-----END SSH HOST KEY KEYS-----
[   20.712345] cloud-init[1058]: Cloud-init v. 19.3-44-gbae9b11d-0ubuntu1~18.04.1 finished at Tue, 14 Jan 2020 10:21:50 +0000. Datasource DataSourceEc2Local.  Up 20.70 seconds
"""


def debian_12_console(keys: dict[str, str], host: str = "ip-172-31-0-5") -> str:
    """A Debian 12 boot: cloud-init 22.4, syslog-style prefixes, the keys block right after the login prompt."""
    return f"""[    0.000000] Linux version 6.1.0-13-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)
[    4.802113] cloud-init[412]: Cloud-init v. 22.4.2 running 'init-local' at Mon, 30 Oct 2023 09:11:58 +0000. Up 4.79 seconds.
[    6.120044] cloud-init[431]: Cloud-init v. 22.4.2 running 'init' at Mon, 30 Oct 2023 09:12:00 +0000. Up 6.10 seconds.
[    6.311207] cloud-init[431]: Generating public/private ed25519 key pair.

Debian GNU/Linux 12 {host} ttyS0

{host} login: <14>Oct 30 09:12:01 cloud-init: #############################################################
<14>Oct 30 09:12:01 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----
<14>Oct 30 09:12:01 cloud-init: 256 SHA256:W0m1rS8q2b0wq4o1G7d2cXgq0q8lYtQ1R2m1b2Jc3Hk root@{host} (ECDSA)
<14>Oct 30 09:12:01 cloud-init: 256 SHA256:uJb1x3fK9d2Q8hT5m0s7cYl2o4v6n8P1q3r5t7w9y0A root@{host} (ED25519)
<14>Oct 30 09:12:01 cloud-init: 3072 SHA256:aZ2x4c6v8b0n1m3k5j7h9g2f4d6s8a0q1w3e5r7t9y2 root@{host} (RSA)
<14>Oct 30 09:12:01 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----
<14>Oct 30 09:12:01 cloud-init: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
<14>Oct 30 09:12:01 cloud-init: {keys["ecdsa-sha2-nistp256"]}
<14>Oct 30 09:12:01 cloud-init: {keys["ssh-ed25519"]}
<14>Oct 30 09:12:01 cloud-init: {keys["ssh-rsa"]}
-----END SSH HOST KEY KEYS-----
[    7.402551] cloud-init[611]: Cloud-init v. 22.4.2 finished at Mon, 30 Oct 2023 09:12:01 +0000. Datasource DataSourceEc2Local.  Up 7.39 seconds
"""


# ---------------------------------------------------------------- the parser
def test_ubuntu_1804_console_gives_each_host_key_once_ed25519_first():
    keys = host_keys("ip-172-31-0-4")
    assert hostkeys.host_keys_from_console(ubuntu_1804_console(keys)) == pinned(keys)


def test_debian_12_console_with_syslog_prefixes_gives_its_keys():
    keys = host_keys("ip-172-31-0-5")
    assert hostkeys.host_keys_from_console(debian_12_console(keys)) == pinned(keys)


def test_after_several_boots_the_last_block_holds_the_keys():
    first, now = host_keys("ip-172-31-0-4"), host_keys("ip-172-31-0-4")
    console = ubuntu_1804_console(first) + "[    0.000000] Linux version 4.15.0-1060-aws\n" + ubuntu_1804_console(now)
    assert hostkeys.host_keys_from_console(console) == pinned(now)


def test_a_block_still_being_printed_gives_nothing_yet():
    keys = host_keys("ip-172-31-0-4")
    whole = ubuntu_1804_console(keys)
    cut = whole[:whole.index(keys["ssh-ed25519"]) + 40]  # the console ends in the middle of the ed25519 line
    assert hostkeys.host_keys_from_console(cut) == []
    # ... and an earlier boot's complete block is not taken for this boot's keys
    assert hostkeys.host_keys_from_console(ubuntu_1804_console(host_keys("old")) + cut) == []


def test_a_damaged_key_line_is_skipped_and_the_good_ones_kept():
    keys = host_keys("ip-172-31-0-4")
    ed_type, ed_blob, comment = keys["ssh-ed25519"].split()
    keys_damaged = dict(keys, **{"ssh-ed25519": f"{ed_type} {ed_blob[:40]} {comment}"})  # cut off mid-key
    found = hostkeys.host_keys_from_console(ubuntu_1804_console(keys_damaged))
    assert found == [p for p in pinned(keys) if not p.startswith("ssh-ed25519")]


def test_consoles_without_the_block_give_nothing():
    assert hostkeys.host_keys_from_console("") == []
    fingerprints_only = ubuntu_1804_console(host_keys("h")).split("-----BEGIN SSH HOST KEY KEYS-----")[0]
    assert hostkeys.host_keys_from_console(fingerprints_only) == []


def test_the_console_is_decoded_from_base64_and_plain_text_passes_through():
    text = debian_12_console(host_keys("ip-172-31-0-5"))
    assert hostkeys.decode_console(base64.b64encode(text.encode()).decode()) == text
    assert hostkeys.decode_console(text) == text
    assert hostkeys.decode_console(None) == ""


# ---------------------------------------------------------------- waiting, pinning, ssh_config (moto)
@pytest.fixture
def lab(monkeypatch):
    """Three running instances in moto and the inventory `lab up` would write for them."""
    monkeypatch.setattr(hostkeys, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(hostkeys, "CALLS_PER_SECOND", 1000.0)
    monkeypatch.setattr(hostkeys, "PROGRESS_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(hostkeys, "CONSOLE_TIMEOUT_SECONDS", 0.5)
    share_botocore_session(monkeypatch)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
        paths = LabPaths.for_lab("keys-lab").ensure()
        base = guide_inventory()
        nodes = []
        for node in base.nodes:
            instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
            nodes.append(node.model_copy(update={"instance_id": instance["InstanceId"]}))
        inv = base.model_copy(update={"lab": "keys-lab", "nodes": nodes, "known_hosts": str(paths.known_hosts),
                                      "key_file": str(paths.key_file)})
        yield inv, paths


def consoles(faults: Faults, inv, outputs: dict[str, list[str]], refuse_latest: bool = False) -> None:
    """GetConsoleOutput of node answers outputs[node] in turn, the last one from then on.

    refuse_latest: as a Xen instance, refuse Latest=true (only Nitro instances offer it)."""
    by_instance = {n.instance_id: list(outputs[n.name]) for n in inv.nodes}

    def answer(params):
        if refuse_latest and params["body"].get("Latest") in ("true", True):
            return {"Error": {"Code": "UnsupportedOperation", "Message": "This instance type does not support "
                                                                         "retrieving the latest console output"}}
        instance_id = params["body"]["InstanceId"]
        queue = by_instance[instance_id]
        text = queue.pop(0) if len(queue) > 1 else queue[0]
        return {"InstanceId": instance_id, "Output": base64.b64encode(text.encode()).decode()}

    faults.answer("GetConsoleOutput", answer, times=10_000)


def test_up_pins_console_keys_before_any_ssh_and_ssh_config_is_strict(lab, monkeypatch):
    inv, paths = lab
    keys = {n.name: host_keys(n.name) for n in inv.nodes}
    booting = "[    3.000000] cloud-init[400]: Cloud-init v. 19.3 running 'init'\n"
    faults = Faults(monkeypatch)
    consoles(faults, inv, {"controller": [ubuntu_1804_console(keys["controller"])],
                           "object1": [booting, booting, ubuntu_1804_console(keys["object1"])],
                           "object2": [debian_12_console(keys["object2"])]})
    lines: list[str] = []
    target = AwsTarget()

    target.pin_host_keys(target.ec2_client(REGION), inv, lines.append)

    expected = "".join(f"{n.ssh_host} {key}\n" for n in inv.nodes for key in pinned(keys[n.name]))
    assert paths.known_hosts.read_text() == expected
    assert oct(os.stat(paths.known_hosts).st_mode & 0o777) == "0o600"
    assert any("waiting for the host keys on the console of object1" in line for line in lines)
    assert "host keys pinned from the console: controller, object1, object2" in "\n".join(lines)
    assert not any("warning" in line for line in lines)
    write_ssh_config(inv, paths, target.strict_host_keys)
    assert paths.ssh_config.read_text().count("StrictHostKeyChecking yes") == 3
    for node in inv.nodes:  # no connection is opened: only the policy each would use
        remote = FabricRemote(node, inv)
        assert isinstance(remote.conn.client._policy, paramiko.RejectPolicy)
        known = remote.conn.client.get_host_keys().lookup(node.ssh_host)
        assert sorted(f"{t} {known[t].get_base64()}" for t in known) == sorted(pinned(keys[node.name]))


def test_a_console_that_never_shows_keys_means_trust_on_first_use_with_a_warning(lab, monkeypatch):
    inv, paths = lab
    keys = {n.name: host_keys(n.name) for n in inv.nodes}
    faults = Faults(monkeypatch)
    silent = "[    3.000000] Linux version 4.15.0-1057-aws\n"
    consoles(faults, inv, {"controller": [ubuntu_1804_console(keys["controller"])],
                           "object1": [ubuntu_1804_console(keys["object1"])], "object2": [silent]})
    lines: list[str] = []
    target = AwsTarget()
    target.pin_host_keys(target.ec2_client(REGION), inv, lines.append)

    assert "warning: object2's console showed no host keys within 0 s: its key is trusted on first use" in \
        "\n".join(lines)
    object2 = inv.node("object2")
    assert object2.ssh_host not in paths.known_hosts.read_text()
    warnings: list[str] = []
    first = FabricRemote(object2, inv, warn=warnings.append)
    policy = first.conn.client._policy
    assert isinstance(policy, _RecordFirstContact)
    key = paramiko.PKey.from_type_string("ssh-ed25519", base64.b64decode(pinned(keys["object2"])[0].split()[1]))
    policy.missing_host_key(first.conn.client, object2.ssh_host, key)  # what paramiko does on first contact
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: object2 ({object2.ssh_host}): its host key was "
                                                         f"not known in advance; trusting ssh-ed25519 SHA256:")
    assert f"{object2.ssh_host} {pinned(keys['object2'])[0]}\n" in paths.known_hosts.read_text()
    assert isinstance(FabricRemote(object2, inv).conn.client._policy, paramiko.RejectPolicy)  # strict from now on

    # the next `lab up` reads the consoles again: the key learnt on first use stays pinned, not waited for
    monkeypatch.setattr(hostkeys, "CONSOLE_TIMEOUT_SECONDS", 30.0)
    again: list[str] = []
    started = time.monotonic()
    target.pin_host_keys(target.ec2_client(REGION), inv, again.append)
    assert time.monotonic() - started < 10
    assert f"{object2.ssh_host} {pinned(keys['object2'])[0]}\n" in paths.known_hosts.read_text()
    assert "object2: its console shows no host keys now; the keys pinned earlier stay" in "\n".join(again)
    assert not any("warning" in line for line in again)


def test_an_instance_without_latest_console_output_is_asked_without_it(lab, monkeypatch):
    inv, _ = lab
    keys = {n.name: host_keys(n.name) for n in inv.nodes}
    faults = Faults(monkeypatch)
    consoles(faults, inv, {n.name: [ubuntu_1804_console(keys[n.name])] for n in inv.nodes}, refuse_latest=True)
    target = AwsTarget()
    found = hostkeys.pin_from_console(target.ec2_client(REGION), inv, progress=lambda line: None)
    assert found == {n.name: pinned(keys[n.name]) for n in inv.nodes}
    assert faults.calls["GetConsoleOutput"] == 6


def test_no_permission_to_read_the_console_names_the_iam_action(lab, monkeypatch):
    inv, paths = lab
    Faults(monkeypatch).error("GetConsoleOutput", "UnauthorizedOperation", times=99,
                              message="You are not authorized to perform this operation.")
    target = AwsTarget()
    with pytest.raises(CloudError, match="may not call ec2:GetConsoleOutput"):
        target.pin_host_keys(target.ec2_client(REGION), inv, lambda line: None)
    assert not paths.known_hosts.exists()


def test_the_console_is_asked_every_second_and_many_nodes_at_most_ten_calls_a_second():
    """Each second between cloud-init printing the keys and the next ask is a second more of
    `lab up`; fifty nodes asked each second would meet EC2's throttling (20 calls a second)."""
    assert hostkeys.poll_seconds(3) == 1.0
    assert hostkeys.poll_seconds(10) == 1.0
    assert hostkeys.poll_seconds(50) == 5.0
    assert 50 / hostkeys.poll_seconds(50) <= 10
