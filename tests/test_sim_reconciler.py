"""The twin's reconciler: which instances get a body, with which volumes and ingress, and what a pass changes."""

from __future__ import annotations

from dataclasses import asdict, replace

import boto3
from moto import mock_aws

from twin.desired import Observed, desired_bodies, labs_owning, observe
from twin.model import IngressRule, InstanceBody, VolumeBody, body_from_dict
from twin.reconciler import Reconciler, reconcile

SUBNET = {"SubnetId": "subnet-1", "CidrBlock": "172.31.0.0/20"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz lab"


def instance(iid: str, ip: str, state: str = "running", tags: dict | None = None, groups=("sg-lab",),
             key: str = "rocky-lab", instance_type: str = "t3.medium") -> dict:
    default = {"lab:name": "rocky-lab", "lab:node": iid.removeprefix("i-"), "Name": f"rocky-lab-{iid}"}
    return {"InstanceId": iid, "State": {"Name": state}, "PrivateIpAddress": ip, "SubnetId": "subnet-1",
            "KeyName": key, "RootDeviceName": "/dev/sda1", "InstanceType": instance_type,
            "SecurityGroups": [{"GroupId": g} for g in groups],
            "Tags": [{"Key": k, "Value": v} for k, v in (default if tags is None else tags).items()]}


def volume(vid: str, size: int, iid: str | None, device: str | None, tags: dict | None = None) -> dict:
    attachments = [{"InstanceId": iid, "Device": device, "State": "attached", "VolumeId": vid}] if iid else []
    return {"VolumeId": vid, "Size": size, "Attachments": attachments,
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}


def group(gid: str, *permissions: dict) -> dict:
    return {"GroupId": gid, "IpPermissions": list(permissions)}


def self_ref(gid: str, protocol: str = "icmp", lo: int = -1, hi: int = -1) -> dict:
    return {"IpProtocol": protocol, "FromPort": lo, "ToPort": hi, "UserIdGroupPairs": [{"GroupId": gid}], "IpRanges": []}


def bodies_of(instances: list[dict], volumes=(), groups=(), keys=None) -> dict[str, InstanceBody]:
    keys = [{"KeyName": "rocky-lab", "PublicKey": KEY}] if keys is None else keys
    found = desired_bodies({"Reservations": [{"Instances": instances}]}, {"Volumes": list(volumes)},
                           {"SecurityGroups": list(groups)}, {"KeyPairs": keys}, {"Subnets": [SUBNET]})
    return {b.instance_id: b for b in found}


# ------------------------------------------------------------------ which instances get a body
def test_running_or_pending_lab_instances_get_a_running_body_and_stopped_ones_a_kept_one():
    bodies = bodies_of([
        instance("i-a", "172.31.0.4"),
        instance("i-b", "172.31.0.5", state="pending"),
        instance("i-c", "172.31.0.6", state="stopped"),
        instance("i-s", "172.31.0.10", state="stopping"),
        instance("i-d", "172.31.0.7", state="terminated"),
        instance("i-t", "172.31.0.11", state="shutting-down"),
        instance("i-e", "172.31.0.8", tags={"Name": "not-a-lab"}),
    ])
    assert {i: b.running for i, b in bodies.items()} == {"i-a": True, "i-b": True, "i-c": False, "i-s": False}


def test_body_takes_hostname_user_and_key_from_tags_and_key_pair():
    bodies = bodies_of([
        instance("i-a", "172.31.0.4", tags={"lab:name": "rocky-lab", "lab:node": "controller",
                                            "Name": "rocky-lab-controller", "lab:ssh-user": "admin"}),
        instance("i-b", "172.31.0.5", tags={"lab:name": "rocky-lab", "Name": "rocky-lab-object1"}),
    ])
    a, b = bodies["i-a"], bodies["i-b"]
    assert (a.lab, a.hostname, a.ssh_user, a.public_key) == ("rocky-lab", "controller", "admin", KEY)
    assert (a.private_ip, a.subnet_cidr) == ("172.31.0.4", "172.31.0.0/20")
    assert (b.hostname, b.ssh_user) == ("rocky-lab-object1", "ubuntu")


def test_body_carries_the_instance_type_for_its_cpu_weight():
    without = instance("i-c", "172.31.0.6")
    del without["InstanceType"]
    bodies = bodies_of([instance("i-a", "172.31.0.4", instance_type="t3.large"),
                        instance("i-b", "172.31.0.5", instance_type="t3.medium"), without])
    assert [bodies[i].instance_type for i in ("i-a", "i-b", "i-c")] == ["t3.large", "t3.medium", ""]


def test_a_body_saved_before_instance_types_reads_with_none():
    saved = asdict(bodies_of([instance("i-a", "172.31.0.4", instance_type="t3.large")])["i-a"])
    del saved["instance_type"]
    old = body_from_dict(saved)
    assert old.instance_type == "" and old.hostname == "a" and old.ingress == ()


def test_a_lab_is_left_while_anything_carries_its_tag_but_terminated_instances_do_not_count():
    tagged = [{"Key": "lab:name", "Value": "kept-lab"}]
    owners = labs_owning(
        {"Reservations": [{"Instances": [instance("i-a", "172.31.0.4", state="terminated"),
                                         instance("i-b", "172.31.0.5", state="stopped", tags={"lab:name": "stopped-lab"}),
                                         instance("i-c", "172.31.0.6", tags={"Name": "not-a-lab"})]}]},
        {"SecurityGroups": [{"GroupId": "sg-1", "Tags": tagged}, {"GroupId": "sg-2"}]},
        {"KeyPairs": [{"KeyName": "k", "Tags": [{"Key": "lab:name", "Value": "key-lab"}]}]},
        {"Volumes": []})
    assert owners == {"kept-lab", "stopped-lab", "key-lab"}


def test_instance_with_an_address_outside_its_subnet_gets_no_body():
    assert bodies_of([instance("i-a", "10.0.0.9")]) == {}


# ------------------------------------------------------------------ volumes
def test_attached_volumes_become_nvme_devices_in_attach_device_order():
    bodies = bodies_of([instance("i-a", "172.31.0.4"), instance("i-b", "172.31.0.5")], volumes=[
        volume("vol-root", 20, "i-a", "/dev/sda1"),
        volume("vol-root-tagged", 20, "i-a", "/dev/xvda", tags={"lab:volume": "root"}),
        volume("vol-g", 20, "i-a", "/dev/sdg"),
        volume("vol-f", 10, "i-a", "/dev/sdf"),
        volume("vol-other", 5, "i-b", "/dev/sdf"),
        volume("vol-free", 5, None, None),
    ])
    assert bodies["i-a"].volumes == (VolumeBody("vol-f", 10, 1, "/dev/sdf"), VolumeBody("vol-g", 20, 2, "/dev/sdg"))
    assert bodies["i-b"].volumes == (VolumeBody("vol-other", 5, 1, "/dev/sdf"),)


# ------------------------------------------------------------------ ingress
def test_group_reference_allows_the_private_ips_of_its_running_members():
    bodies = bodies_of([instance("i-a", "172.31.0.4"), instance("i-b", "172.31.0.5"),
                        instance("i-c", "172.31.0.6", state="stopped"),
                        instance("i-x", "172.31.0.9", tags={}, groups=("sg-other",))],
                       groups=[group("sg-lab", self_ref("sg-lab"))])
    assert bodies["i-a"].ingress == (IngressRule("icmp", None, None, ("172.31.0.4/32", "172.31.0.5/32")),)
    assert bodies["i-b"].ingress == bodies["i-a"].ingress


def test_cidr_rules_keep_ports_and_all_protocols_have_none():
    bodies = bodies_of([instance("i-a", "172.31.0.4")], groups=[group(
        "sg-lab",
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "172.31.0.1/32"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-lab"}]},
        {"IpProtocol": "udp", "FromPort": 4789, "ToPort": 4790, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": "sg-empty"}]},
    )])
    assert bodies["i-a"].ingress == (
        IngressRule("all", None, None, ("172.31.0.4/32",)),
        IngressRule("tcp", 22, 22, ("172.31.0.1/32",)),
        IngressRule("udp", 4789, 4790, ("10.0.0.0/8",)),
    )


def test_rules_of_all_the_instance_groups_are_merged():
    bodies = bodies_of([instance("i-a", "172.31.0.4", groups=("sg-1", "sg-2"))], groups=[
        group("sg-1", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}),
        group("sg-2", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "5.6.7.8/32"}]}),
        group("sg-3", {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "9.9.9.9/32"}]}),
    ])
    assert bodies["i-a"].ingress == (IngressRule("tcp", 22, 22, ("1.2.3.4/32", "5.6.7.8/32")),)


# ------------------------------------------------------------------ against moto
@mock_aws
def test_moto_state_with_self_referencing_icmp_rule_becomes_bodies():
    ec2 = boto3.client("ec2", region_name="ap-northeast-2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    gid = ec2.create_security_group(GroupName="rocky-lab", Description="lab", VpcId=subnet["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        self_ref(gid), {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "172.31.0.1/32"}]}])
    ec2.import_key_pair(KeyName="rocky-lab", PublicKeyMaterial=KEY.encode())
    ids = {}
    for node, instance_type in (("controller", "t3.large"), ("object1", "t3.medium")):
        tags = [{"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": node},
                {"Key": "lab:ssh-user", "Value": "ubuntu"}]
        ids[node] = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, KeyName="rocky-lab",
                                      InstanceType=instance_type, SubnetId=subnet["SubnetId"], SecurityGroupIds=[gid],
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
                                      )["Instances"][0]["InstanceId"]
    vol = ec2.create_volume(Size=3, AvailabilityZone=subnet["AvailabilityZone"])["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=ids["object1"], Device="/dev/sdf")

    seen = observe(ec2)
    bodies = {b.hostname: b for b in seen.bodies}

    ips = sorted(f"{b.private_ip}/32" for b in bodies.values())
    assert set(bodies) == {"controller", "object1"}
    assert bodies["controller"].public_key.startswith(KEY.rsplit(" ", 1)[0])
    assert bodies["controller"].subnet_cidr == subnet["CidrBlock"]
    assert bodies["controller"].volumes == ()
    assert (bodies["controller"].instance_type, bodies["object1"].instance_type) == ("t3.large", "t3.medium")
    assert bodies["object1"].volumes == (VolumeBody(vol, 3, 1, "/dev/sdf"),)
    assert IngressRule("icmp", None, None, tuple(ips)) in bodies["object1"].ingress
    assert IngressRule("tcp", 22, 22, ("172.31.0.1/32",)) in bodies["object1"].ingress

    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[self_ref(gid)])
    assert all(r.protocol != "icmp" for b in observe(ec2).bodies for r in b.ingress)
    assert vol in seen.volume_ids and {b.region for b in seen.bodies} == {"ap-northeast-2"}


# ------------------------------------------------------------------ reconcile passes
class FakeBodies:
    """A BodyLayer that keeps bodies in memory and records every call; `fail` makes calls raise."""

    def __init__(self, existing: dict[str, InstanceBody] | None = None):
        self.existing = dict(existing or {})
        self.calls: list[tuple] = []
        self.fail: set[tuple] = set()
        self.ends: dict[str, str] = {}  # what the containers did by themselves, for the next pass

    def _call(self, *call) -> None:
        self.calls.append(call)
        if call in self.fail:
            raise RuntimeError(f"boom in {call}")

    def ensure_network(self, subnet_cidr):
        self._call("ensure_network", subnet_cidr)

    def bodies(self):
        return dict(self.existing)

    def start(self, body):
        self._call("start", body.instance_id)
        self.existing[body.instance_id] = body

    def stop(self, instance_id):
        self._call("stop", instance_id)
        self.existing.pop(instance_id)

    def sync_volumes(self, body):
        self._call("sync_volumes", body.instance_id)
        self.existing[body.instance_id] = body

    def apply_firewall(self, bodies):
        self._call("apply_firewall", tuple(b.instance_id for b in bodies))

    def power_off(self, body):
        self._call("power_off", body.instance_id)
        self.existing[body.instance_id] = replace(body, running=False)

    def reboot(self, instance_id):
        self._call("reboot", instance_id)

    def ended(self):
        ended, self.ends = self.ends, {}
        return ended

    def prune_volumes(self, existing):
        self._call("prune_volumes", tuple(sorted(existing)))
        return []

    def host_public_keys(self, instance_id):
        return []

    def console_output(self, instance_id):
        return None

    def teardown_all(self):
        return []


def body(iid: str, ip: str, cidr: str = "172.31.0.0/20", volumes=(), ingress=()) -> InstanceBody:
    return InstanceBody(iid, "rocky-lab", iid, ip, cidr, "ubuntu", KEY, tuple(volumes), tuple(ingress))


def test_missing_bodies_are_started_on_their_network():
    layer = FakeBodies()
    desired = [body("i-a", "172.31.0.4"), body("i-b", "10.1.0.5", cidr="10.1.0.0/24")]
    report = reconcile(layer, desired)
    assert report.started == ["i-a", "i-b"] and not report.errors
    assert layer.calls == [("ensure_network", "10.1.0.0/24"), ("ensure_network", "172.31.0.0/20"),
                           ("start", "i-a"), ("start", "i-b"), ("apply_firewall", ("i-a", "i-b"))]


def test_body_of_terminated_instance_is_stopped():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4"), "i-gone": body("i-gone", "172.31.0.9")})
    report = reconcile(layer, [body("i-a", "172.31.0.4")])
    assert report.stopped == ["i-gone"] and report.started == []
    assert set(layer.existing) == {"i-a"}


def test_attached_or_detached_volume_syncs_the_body():
    disk = VolumeBody("vol-1", 10, 1, "/dev/sdf")
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer)
    assert rec.reconcile([body("i-a", "172.31.0.4", volumes=[disk])]).volumes_synced == ["i-a"]
    assert rec.reconcile([body("i-a", "172.31.0.4", volumes=[disk])]).volumes_synced == []
    assert rec.reconcile([body("i-a", "172.31.0.4")]).volumes_synced == ["i-a"]
    assert layer.existing["i-a"].volumes == ()


def test_firewall_is_applied_again_only_when_rules_change():
    icmp = IngressRule("icmp", None, None, ("172.31.0.4/32",))
    layer = FakeBodies()
    rec = Reconciler(layer)
    assert rec.reconcile([body("i-a", "172.31.0.4", ingress=[icmp])]).firewall_applied
    second = rec.reconcile([body("i-a", "172.31.0.4", ingress=[icmp])])
    assert not second.firewall_applied and not second.changed
    assert rec.reconcile([body("i-a", "172.31.0.4")]).firewall_applied  # the ICMP rule was revoked
    assert [c for c in layer.calls if c[0] == "apply_firewall"] == [("apply_firewall", ("i-a",))] * 2


def test_a_failing_body_does_not_stop_the_others_and_is_retried_later():
    now = [0.0]
    layer = FakeBodies({"i-old": body("i-old", "172.31.0.9")})
    layer.fail = {("start", "i-a"), ("stop", "i-old")}
    rec = Reconciler(layer, clock=lambda: now[0])
    desired = [body("i-a", "172.31.0.4"), body("i-b", "172.31.0.5")]

    first = rec.reconcile(desired)
    assert first.started == ["i-b"] and first.firewall_applied
    assert any("start i-a" in e for e in first.errors) and any("stop i-old" in e for e in first.errors)

    layer.fail.clear()
    waiting = rec.reconcile(desired)  # backing off: not retried at once
    assert waiting.started == [] and ("start", "i-a") not in layer.calls[-3:]
    now[0] = 60.0
    retried = rec.reconcile(desired)
    assert retried.started == ["i-a"] and retried.stopped == ["i-old"] and not retried.errors


def test_a_broken_network_holds_back_only_its_own_bodies():
    layer = FakeBodies()
    layer.fail = {("ensure_network", "10.1.0.0/24")}
    report = reconcile(layer, [body("i-a", "172.31.0.4"), body("i-b", "10.1.0.5", cidr="10.1.0.0/24")])
    assert report.started == ["i-a"]
    assert ("start", "i-b") not in layer.calls


def test_a_failed_firewall_is_applied_again_on_a_later_pass():
    now = [0.0]
    layer = FakeBodies()
    layer.fail = {("apply_firewall", ("i-a",))}
    rec = Reconciler(layer, clock=lambda: now[0])
    assert not rec.reconcile([body("i-a", "172.31.0.4")]).firewall_applied
    layer.fail.clear()
    now[0] = 60.0
    assert rec.reconcile([body("i-a", "172.31.0.4")]).firewall_applied


def test_changed_body_keeps_its_identity():
    """Only volumes are synced in place: the same instance with new volumes is not restarted."""
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    reconcile(layer, [replace(body("i-a", "172.31.0.4"), volumes=(VolumeBody("vol-1", 1, 1, "/dev/sdf"),))])
    assert ("stop", "i-a") not in layer.calls and ("start", "i-a") not in layer.calls


# ------------------------------------------------------------------ what bodies do by themselves, and reboots
def starts(layer: FakeBodies) -> list[tuple]:
    return [c for c in layer.calls if c[0] == "start"]


def test_a_body_that_rebooted_is_booted_again_once():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer)
    layer.ends = {"i-a": "reboot"}
    assert rec.reconcile([body("i-a", "172.31.0.4")]).started == ["i-a"]
    assert rec.reconcile([body("i-a", "172.31.0.4")]).started == []
    assert starts(layer) == [("start", "i-a")] and ("stop", "i-a") not in layer.calls


def test_a_reboot_through_the_api_reaches_only_running_bodies():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4"), "i-b": replace(body("i-b", "172.31.0.5"), running=False)})
    rec = Reconciler(layer)
    rec.request_reboot(["i-a", "i-b", "i-unknown"])
    desired = [body("i-a", "172.31.0.4"), replace(body("i-b", "172.31.0.5"), running=False)]
    assert rec.reconcile(desired).rebooting == ["i-a"]
    assert rec.reconcile(desired).rebooting == []  # asked once, rebooted once
    assert [c for c in layer.calls if c[0] == "reboot"] == [("reboot", "i-a")]


def test_a_body_that_powered_off_is_an_instance_initiated_shutdown_told_to_the_api_once():
    told = []
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer, on_shutdown=lambda b: told.append(b.instance_id) or "terminated")
    layer.ends = {"i-a": "poweroff"}
    report = rec.reconcile([body("i-a", "172.31.0.4")])
    assert report.shut_down == ["i-a terminated"] and told == ["i-a"]
    assert rec.reconcile([body("i-a", "172.31.0.4")]).shut_down == []  # the API has not caught up yet: no repeat
    assert starts(layer) == []  # and the powered-off body is not booted again meanwhile
    assert rec.reconcile([]).stopped == ["i-a"]  # terminated: the body goes


def test_a_shutdown_the_api_refused_is_told_again_later():
    now, answers = [0.0], [RuntimeError("throttled"), "stopped"]

    def tell(b):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer, clock=lambda: now[0], on_shutdown=tell)
    layer.ends = {"i-a": "poweroff"}
    assert any("shutdown i-a" in e for e in rec.reconcile([body("i-a", "172.31.0.4")]).errors)
    now[0] = 60.0
    assert rec.reconcile([body("i-a", "172.31.0.4")]).shut_down == ["i-a stopped"]


def test_a_container_that_died_otherwise_is_left_as_it_is():
    told = []
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer, on_shutdown=lambda b: told.append(b) or "stopped")
    layer.ends = {"i-a": "died (systemd-nspawn exit 1)"}
    report = rec.reconcile([body("i-a", "172.31.0.4")])
    assert (report.started, report.stopped, report.shut_down, told, starts(layer)) == ([], [], [], [], [])


def test_a_stopped_instance_keeps_its_body_powered_off_and_a_start_boots_it():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer)
    stopped = replace(body("i-a", "172.31.0.4"), running=False)
    assert rec.reconcile([stopped]).powered_off == ["i-a"]
    assert rec.reconcile([stopped]).powered_off == [] and "i-a" in layer.existing
    assert rec.reconcile([body("i-a", "172.31.0.4")]).started == ["i-a"]


def test_a_stopped_body_is_not_in_the_firewall_nor_on_a_network():
    layer = FakeBodies({"i-b": replace(body("i-b", "10.1.0.5", cidr="10.1.0.0/24"), running=False)})
    reconcile(layer, [body("i-a", "172.31.0.4"), replace(body("i-b", "10.1.0.5", cidr="10.1.0.0/24"), running=False)])
    assert ("ensure_network", "10.1.0.0/24") not in layer.calls
    assert ("apply_firewall", ("i-a",)) in layer.calls


def test_volume_files_are_pruned_against_the_volumes_the_api_still_has():
    layer = FakeBodies()
    reconcile(layer, Observed([body("i-a", "172.31.0.4")], {"vol-1", "vol-2"}))
    assert ("prune_volumes", ("vol-1", "vol-2")) in layer.calls
