"""`lab up` and what the config no longer has (lab/shrink.py), on moto: a node or volume taken out is
kept and recorded as leaving until `lab install` has drained it and marked it lab:drained; then
the next `up` terminates the node or detaches and deletes the volume. Never anything without
the lab's tag, and a drained one back in the config loses its mark."""

from __future__ import annotations

from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    CONFIG,
    OBJECT3,
    by_node,
    ec2,
    lab_instances,
    moto_images,
    on_every_client,
    run_up,
    spec_with,
    swift_volumes,
    tags,
    with_fewer_volumes,
)

from lab.shrink import mark_drained

LAB = "rocky-lab"


def up_lines(spec) -> tuple[object, list[str]]:
    lines: list[str] = []
    return run_up(spec, lines), lines


def drained_tags(ec2) -> dict[str, str]:
    found = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["lab:drained"]}])["Tags"]
    return {t["ResourceId"]: t["Value"] for t in found}


def instance_state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_a_node_taken_out_of_the_config_keeps_running_and_is_recorded_leaving(ec2):
    run_up(spec_with(OBJECT3))
    object3 = by_node(lab_instances(ec2))["object3"]
    report, lines = up_lines(spec_with())
    assert instance_state(ec2, object3["InstanceId"]) == "running"
    node = report.inventory.node("object3")
    assert node.leaving and node.private_ip == object3["PrivateIpAddress"] and node.role == "object"
    assert [(v.name, v.leaving) for v in node.volumes] == [("sdb", True), ("sdc", True)]
    assert not any(n.leaving for n in report.inventory.nodes if n.name != "object3")
    assert [n.name for n in report.inventory.nodes] == ["controller", "object1", "object2", "object3"]
    assert (f"instance {object3['InstanceId']} (node object3) is no longer in the config and still holds Swift "
            f"data: run `lab install` first: it drains it, then `lab up` terminates it") in lines
    assert report.created == []


def test_a_volume_taken_out_of_the_config_stays_attached_and_is_recorded_leaving(ec2):
    run_up(spec_with())
    report, lines = up_lines(spec_with(text=with_fewer_volumes(nodes=("object2",))))
    object2 = report.inventory.node("object2")
    assert [(v.name, v.leaving) for v in object2.volumes] == [("sdb", False), ("sdc", True)]
    sdc = next(v for v in swift_volumes(ec2) if tags(v)["lab:node"] == "object2" and tags(v)["lab:volume"] == "sdc")
    assert sdc["State"] == "in-use" and sdc["VolumeId"] == object2.volumes[1].volume_id
    assert any(line.startswith(f"volume object2/sdc ({sdc['VolumeId']}) is no longer in the config and still holds "
                               f"Swift data: run `lab install` first") for line in lines)


def test_a_drained_node_is_terminated_by_the_next_up_and_leaves_the_inventory(ec2):
    run_up(spec_with(OBJECT3))
    report, _ = up_lines(spec_with())
    node = report.inventory.node("object3")
    marked = mark_drained(ec2, LAB, [node.instance_id, *(v.volume_id for v in node.volumes)], lambda line: None)
    assert sorted(marked) == sorted([node.instance_id, *(v.volume_id for v in node.volumes)])
    report, lines = up_lines(spec_with())
    assert instance_state(ec2, node.instance_id) in ("shutting-down", "terminated")
    assert f"drained by `lab install`, terminated: object3 ({node.instance_id})" in lines
    assert [n.name for n in report.inventory.nodes] == ["controller", "object1", "object2"]
    assert not [v for v in swift_volumes(ec2) if tags(v)["lab:node"] == "object3"]  # they went with it
    assert len(lab_instances(ec2)) == 3
    _, again = up_lines(spec_with())
    assert not any("object3" in line for line in again)


def test_a_drained_volume_is_detached_and_deleted_and_its_node_keeps_running(ec2):
    run_up(spec_with())
    fewer = spec_with(text=with_fewer_volumes(nodes=("object2",)))
    report, _ = up_lines(fewer)
    sdc = report.inventory.node("object2").volumes[1]
    mark_drained(ec2, LAB, [sdc.volume_id], lambda line: None)
    report, lines = up_lines(fewer)
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [sdc.volume_id]}])["Volumes"] == []
    assert f"drained by `lab install`, detached and deleted: object2/sdc ({sdc.volume_id})" in lines
    assert [v.name for v in report.inventory.node("object2").volumes] == ["sdb"]
    assert instance_state(ec2, report.inventory.node("object2").instance_id) == "running"


def test_an_undrained_node_is_never_removed_and_what_lacks_the_labs_tag_is_never_marked(ec2):
    run_up(spec_with(OBJECT3))
    report, _ = up_lines(spec_with())
    foreign = ec2.run_instances(ImageId=lab_instances(ec2)[0]["ImageId"], MinCount=1, MaxCount=1,
                                TagSpecifications=[{"ResourceType": "instance",
                                                    "Tags": [{"Key": "lab:drained", "Value": "true"},
                                                             {"Key": "lab:name", "Value": "another-lab"}]}]
                                )["Instances"][0]["InstanceId"]
    assert mark_drained(ec2, LAB, [foreign], lambda line: None) == []  # not the lab's: never marked by it
    up_lines(spec_with())
    up_lines(spec_with())
    assert instance_state(ec2, report.inventory.node("object3").instance_id) == "running"  # not drained yet
    assert instance_state(ec2, foreign) == "running"  # another lab's, drained or not


def test_a_drained_node_back_in_the_config_loses_its_mark_and_is_drained_again_before_removal(ec2):
    run_up(spec_with(OBJECT3))
    report, _ = up_lines(spec_with())
    node = report.inventory.node("object3")
    mark_drained(ec2, LAB, [node.instance_id], lambda line: None)
    back, lines = up_lines(spec_with(OBJECT3))  # put back before an `up` removed it
    assert not back.inventory.node("object3").leaving
    assert drained_tags(ec2) == {} and any("back in the config, no longer marked drained" in line for line in lines)
    up_lines(spec_with())  # out again: it serves data again, so it is only recorded leaving
    assert instance_state(ec2, node.instance_id) == "running"


def test_up_asks_for_what_is_drained_in_two_calls_and_a_fresh_lab_in_none(ec2, monkeypatch):
    calls: list[tuple[str, list]] = []
    on_every_client(monkeypatch, lambda c: c.meta.events.register(
        "before-parameter-build.ec2.*", lambda model=None, params=None, **_: calls.append(
            (model.name, params.get("Filters")))))
    run_up(spec_with())
    asked = [c for c in calls if any(f["Name"] == "tag:lab:drained" for f in (c[1] or []))]
    assert asked == []  # nothing existed: nothing can be drained
    calls.clear()
    run_up(spec_with())
    asked = [name for name, filters in calls if any(f["Name"] == "tag:lab:drained" for f in (filters or []))]
    assert asked == ["DescribeInstances", "DescribeVolumes"]
