"""A new node's Swift volumes come with its RunInstances (block device mappings); lab:volume is added
after the launch, one CreateTags per name; a volume added to a running node keeps the old path.

Calls are counted with a botocore hook on the lab's own clients, as tests/test_provision.py does.
"""

from __future__ import annotations

import pytest
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    CALLER,
    CONFIG,
    OBJECT3,
    REGION,
    Answers,
    by_node,
    ec2,
    lab_instances,
    moto_images,
    on_every_client,
    refuse,
    run_up,
    spec_with,
    swift_volumes,
    tags,
    with_fewer_volumes,
)

from lab import cli, volumes
from lab.discovery import find_lab
from labcore.errors import CloudError

LAB = [{"Name": "tag:lab:name", "Values": ["rocky-lab"]}]


class Calls:
    """Every EC2 call of the lab's clients from now on, by operation."""

    def __init__(self, monkeypatch):
        self.counts: dict[str, int] = {}
        on_every_client(monkeypatch, lambda c: c.meta.events.register("before-call.ec2.*", self._count))

    def _count(self, model=None, **_):
        self.counts[model.name] = self.counts.get(model.name, 0) + 1

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


def _all_lab_volumes(ec2) -> list[dict]:
    return [v for v in ec2.describe_volumes(Filters=LAB)["Volumes"] if v["State"] not in ("deleting", "deleted")]


def _mappings(instance: dict) -> dict[str, dict]:
    return {m["DeviceName"]: m["Ebs"] for m in instance["BlockDeviceMappings"]}


def _volume_tags(params: dict) -> dict[str, str]:
    spec = next(s for s in params["TagSpecifications"] if s["ResourceType"] == "volume")
    return {t["Key"]: t["Value"] for t in spec["Tags"]}


def _node_of(params: dict) -> str:
    return _volume_tags(params)["lab:node"]


def test_a_new_nodes_volumes_come_with_its_launch_tagged_with_their_names(ec2, monkeypatch):
    runs = Answers(monkeypatch, "RunInstances", lambda params: None)
    calls = Calls(monkeypatch)
    report = run_up(spec_with())
    counts = calls.take()
    assert counts["RunInstances"] == 3 and counts["CreateTags"] == 3  # sdb, sdc, root of both object nodes
    assert not {"CreateVolume", "AttachVolume", "ModifyInstanceAttribute"} & set(counts)
    requests = {_node_of(p): p for p in runs.calls}
    swift = [m for m in requests["object1"]["BlockDeviceMappings"] if m["DeviceName"] != "/dev/sda1"]
    assert swift == [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "VolumeType": "gp3",
                                                        "DeleteOnTermination": True, "Encrypted": True}},
                     {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 10, "VolumeType": "gp3",
                                                        "DeleteOnTermination": True, "Encrypted": True}}]
    # One set of volume tags for every volume of a launch: the per-volume name cannot be among them.
    assert "lab:volume" not in _volume_tags(requests["object1"])
    assert _volume_tags(requests["object1"])["lab:name"] == "rocky-lab"
    assert _volume_tags(requests["controller"])["lab:volume"] == "root"  # no Swift volume: tagged at creation
    assert [m["DeviceName"] for m in requests["controller"]["BlockDeviceMappings"]] == ["/dev/sda1"]

    nodes = by_node(lab_instances(ec2))
    for volume in _all_lab_volumes(ec2):
        t, attachment = tags(volume), volume["Attachments"][0]
        instance = nodes[t["lab:node"]]
        assert attachment["InstanceId"] == instance["InstanceId"]
        assert volume["AvailabilityZone"] == instance["Placement"]["AvailabilityZone"]
        assert t["lab:volume"] == {"/dev/sda1": "root", "/dev/sdf": "sdb", "/dev/sdg": "sdc"}[attachment["Device"]]
        assert _mappings(instance)[attachment["Device"]]["DeleteOnTermination"] is True
    assert len(_all_lab_volumes(ec2)) == 3 + 4
    record = report.inventory.node("object1")
    by_device = {v["Attachments"][0]["Device"]: v["VolumeId"] for v in _all_lab_volumes(ec2)
                 if tags(v)["lab:node"] == "object1"}
    assert [(v.name, v.device, v.volume_id) for v in record.volumes] == [
        ("sdb", "/dev/sdf", by_device["/dev/sdf"]), ("sdc", "/dev/sdg", by_device["/dev/sdg"])]
    assert sum(c.startswith("volume ") for c in report.created) == 4
    assert run_up(spec_with()).created == [] and "CreateTags" not in calls.take()


def _stop_at_tagging(monkeypatch, refusing: dict | None = None) -> Answers:
    """CreateTags of lab:volume refused (while refusing["on"]): the run stops right after the launch."""
    refusing = refusing if refusing is not None else {"on": True}
    return Answers(monkeypatch, "CreateTags", lambda params: refuse("UnauthorizedOperation", "CreateTags")
                   if refusing["on"] and any(t["Key"] == "lab:volume" for t in params.get("Tags", [])) else None)


def test_a_crash_between_launch_and_tagging_is_finished_by_the_next_up(ec2, monkeypatch):
    refusing = {"on": True}
    stop = _stop_at_tagging(monkeypatch, refusing)
    with pytest.raises(CloudError, match="UnauthorizedOperation"):
        run_up(spec_with())
    assert stop.calls and len(lab_instances(ec2)) == 3
    untagged = [v for v in _all_lab_volumes(ec2) if "lab:volume" not in tags(v)]
    assert len(untagged) == 4 + 2  # the Swift volumes and the object nodes' roots
    # What the next `up` sees: each volume is its device's, though not tagged yet.
    found = find_lab(ec2, "rocky-lab", volumes.device_names(spec_with()))
    assert sorted((v.node, v.name, v.tagged) for v in found.volumes if v.node == "object2") == [
        ("object2", "root", False), ("object2", "sdb", False), ("object2", "sdc", False)]

    refusing["on"] = False  # EC2 lets the lab tag again
    calls = Calls(monkeypatch)
    lines: list[str] = []
    report = run_up(spec_with(), lines)
    counts = calls.take()
    assert report.created == []  # the last run made them all: nothing made twice
    assert not {"RunInstances", "CreateVolume", "AttachVolume", "TerminateInstances", "DeleteVolume"} & set(counts)
    assert counts["CreateTags"] == 3
    assert any(line.startswith("6 volumes made with their instances tagged with their names in 3 calls")
               for line in lines)
    assert sorted(tags(v)["lab:volume"] for v in _all_lab_volumes(ec2)) == ["root"] * 3 + ["sdb"] * 2 + ["sdc"] * 2
    assert len(swift_volumes(ec2)) == 4
    assert [v.name for v in report.inventory.node("object2").volumes] == ["sdb", "sdc"]
    assert run_up(spec_with()).created == []


def test_a_crash_before_tagging_is_one_line_exit_1_from_the_cli(ec2, monkeypatch, tmp_path, capsys):
    _stop_at_tagging(monkeypatch)
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG.replace("allow_from: [auto]", f"allow_from: [{CALLER}]"))
    assert cli.main(["up", "--no-ssh", "--config", str(config), "--target", "aws"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "ec2:CreateTags" in err


def test_a_volume_added_to_a_running_node_is_created_attached_and_marked(ec2, monkeypatch):
    run_up(spec_with(text=with_fewer_volumes(nodes=("object2",))))
    before = by_node(lab_instances(ec2))["object2"]
    calls = Calls(monkeypatch)
    report = run_up(spec_with())
    counts = calls.take()
    assert counts["CreateVolume"] == 1 and counts["AttachVolume"] == 1 and counts["ModifyInstanceAttribute"] == 1
    assert "RunInstances" not in counts and "CreateTags" not in counts
    [added] = [v for v in swift_volumes(ec2) if (tags(v)["lab:node"], tags(v)["lab:volume"]) == ("object2", "sdc")]
    assert report.created == [f"volume object2/sdc ({added['VolumeId']})"]
    assert added["Attachments"][0]["InstanceId"] == before["InstanceId"]
    assert added["Attachments"][0]["Device"] == "/dev/sdg"
    assert added["AvailabilityZone"] == before["Placement"]["AvailabilityZone"]
    after = by_node(lab_instances(ec2))["object2"]
    assert after["InstanceId"] == before["InstanceId"] and _mappings(after)["/dev/sdg"]["DeleteOnTermination"]
    assert run_up(spec_with()).created == []


def test_growing_the_lab_by_a_node_launches_it_with_its_volumes_for_two_calls_and_a_constant(ec2, monkeypatch):
    run_up(spec_with())
    calls = Calls(monkeypatch)
    again = run_up(spec_with())
    idle = calls.take()
    report = run_up(spec_with(OBJECT3))
    grown = calls.take()
    assert grown["RunInstances"] == 1 and grown["CreateTags"] == 3 and "CreateVolume" not in grown
    # Over an `up` that adds nothing: the image lookup and the node's RunInstances, the look again
    # after a launch (DescribeInstances, DescribeVolumes), the tagging (sdb, sdc, root).
    assert sum(grown.values()) - sum(idle.values()) == 2 + 2 + 3
    assert again.created == []
    new = [v for v in swift_volumes(ec2) if tags(v)["lab:node"] == "object3"]
    assert sorted((tags(v)["lab:volume"], v["Size"]) for v in new) == [("sdb", 20), ("sdc", 30)]
    assert [v.name for v in report.inventory.node("object3").volumes] == ["sdb", "sdc"]
    assert {c.split()[1] for c in report.created} == {"object3", "object3/sdb", "object3/sdc"}


def test_an_extra_launch_of_a_node_goes_with_the_volumes_it_was_launched_with(ec2, monkeypatch):
    lost = {}

    def decide(params):
        if _node_of(params) == "object1" and not lost:
            lost["id"] = runs.side.run_instances(**params)["Instances"][0]["InstanceId"]
            return refuse("InternalError", "RunInstances", status=500)
        return None

    runs = Answers(monkeypatch, "RunInstances", decide)
    deletes = Answers(monkeypatch, "DeleteVolume", lambda params: None)
    lines: list[str] = []
    run_up(spec_with(), lines)
    kept = by_node(lab_instances(ec2))["object1"]["InstanceId"]
    both = {i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "tag:lab:node", "Values": ["object1"]}])[
        "Reservations"] for i in r["Instances"]}
    [extra] = both - {kept}
    assert lost["id"] in both and any(line.endswith(f"terminating {extra}") for line in lines)
    # Its volumes went with it (DeleteOnTermination), none deleted one by one, none tagged.
    assert deletes.calls == []
    assert all(v["Attachments"] and v["Attachments"][0]["InstanceId"] != extra for v in _all_lab_volumes(ec2))
    assert all("lab:volume" in tags(v) for v in _all_lab_volumes(ec2)) and len(_all_lab_volumes(ec2)) == 3 + 4


def test_discovery_names_an_untagged_volume_by_its_device_only_with_the_config():
    from lab.discovery import _volume

    raw = {"VolumeId": "vol-1", "State": "in-use", "Size": 10, "AvailabilityZone": f"{REGION}a",
           "Tags": [{"Key": "lab:name", "Value": "rocky-lab"}, {"Key": "lab:node", "Value": "object1"}],
           "Attachments": [{"InstanceId": "i-1", "Device": "/dev/sdg", "State": "attached"}]}
    devices = volumes.device_names(spec_with())
    roots = {"i-1": "/dev/sda1"}
    assert (_volume(raw, roots, devices).name, _volume(raw, roots, devices).tagged) == ("sdc", False)
    assert _volume(raw, roots, {}).name == "vol-1"  # without the config: not guessed
    assert _volume(raw, {}, devices).name == "vol-1"  # not on a live instance of the lab
    at_root = {**raw, "Attachments": [{"InstanceId": "i-1", "Device": "/dev/sda1", "State": "attached"}]}
    assert _volume(at_root, roots, {}).name == "root"
    tagged = {**raw, "Tags": raw["Tags"] + [{"Key": "lab:volume", "Value": "sdb"}]}
    assert (_volume(tagged, roots, devices).name, _volume(tagged, roots, devices).tagged) == ("sdb", True)


def test_tags_are_batched_one_call_per_name():
    assert volumes.name_batches([("vol-3", "sdb"), ("vol-1", "root"), ("vol-2", "sdb"), ("vol-4", "sdc")]) == {
        "root": ["vol-1"], "sdb": ["vol-2", "vol-3"], "sdc": ["vol-4"]}
    assert volumes.device_names(spec_with()) == {"object1": {"/dev/sdf": "sdb", "/dev/sdg": "sdc"},
                                                 "object2": {"/dev/sdf": "sdb", "/dev/sdg": "sdc"}}


def test_a_new_node_keeps_the_volume_an_earlier_run_left_and_brings_the_rest_with_its_launch(ec2, monkeypatch):
    # What an `up` of the earlier kind (CreateVolume first) left when it stopped: object1's sdb, loose, in c.
    left = ec2.create_volume(AvailabilityZone=f"{REGION}c", Size=10, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [{"Key": "lab:name", "Value": "rocky-lab"},
                                           {"Key": "lab:node", "Value": "object1"},
                                           {"Key": "lab:role", "Value": "object"},
                                           {"Key": "lab:volume", "Value": "sdb"}]}])["VolumeId"]
    runs = Answers(monkeypatch, "RunInstances", lambda params: None)
    run_up(spec_with())
    object1 = by_node(lab_instances(ec2))["object1"]
    assert object1["Placement"]["AvailabilityZone"] == f"{REGION}c"  # where its volume already was
    request = next(p for p in runs.calls if _node_of(p) == "object1")
    assert [m["DeviceName"] for m in request["BlockDeviceMappings"][1:]] == ["/dev/sdg"]  # sdc only
    on_it = {tags(v)["lab:volume"]: (v["VolumeId"], v["Attachments"][0]["Device"])
             for v in _all_lab_volumes(ec2) if v["Attachments"] and v["Attachments"][0]["InstanceId"]
             == object1["InstanceId"]}
    assert on_it["sdb"] == (left, "/dev/sdf") and on_it["sdc"][1] == "/dev/sdg" and on_it["root"][1] == "/dev/sda1"
    assert all(m["Ebs"]["DeleteOnTermination"] for m in by_node(lab_instances(ec2))["object1"]["BlockDeviceMappings"])
    assert run_up(spec_with()).created == []


def _volumes_hidden(monkeypatch, hide) -> Answers:
    """DescribeVolumes answers no volume on the calls hide(n) picks (n counts from 1): EC2 not listing them yet."""
    seen = {"n": 0}

    def decide(params):
        seen["n"] += 1
        return {"Volumes": [], "ResponseMetadata": {"HTTPStatusCode": 200}} if hide(seen["n"]) else None

    return Answers(monkeypatch, "DescribeVolumes", decide)


def test_volumes_a_launch_made_that_ec2_lists_late_are_looked_for_again(ec2, monkeypatch):
    described = _volumes_hidden(monkeypatch, lambda n: n == 2)  # 1: what exists; 2: the look again after launch
    report = run_up(spec_with())
    assert len(described.calls) == 4  # one more look than usual, then the inventory's
    assert sorted(tags(v)["lab:volume"] for v in swift_volumes(ec2)) == ["sdb", "sdb", "sdc", "sdc"]
    assert [v.name for v in report.inventory.node("object1").volumes] == ["sdb", "sdc"]


def test_volumes_ec2_never_lists_stop_the_run_with_a_line_saying_to_run_up_again(ec2, monkeypatch):
    _volumes_hidden(monkeypatch, lambda n: n > 1)
    with pytest.raises(CloudError, match=r"EC2 does not list the volumes launched with their instances yet "
                                         r"\(object1/sdb, object1/sdc, object2/sdb, object2/sdc\); run `lab up` again"):
        run_up(spec_with())
