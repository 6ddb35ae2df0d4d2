"""Never pay for a forgotten lab (issue 12), on moto through the CLI: the cost before anything is
made, an expiry on every resource and every instance terminated when its host powers off,
`lab extend`, `lab down --expired` and `lab status`'s lifetime."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from launch_fixtures import CALLER, CONFIG, IMAGES, NEWEST_BIONIC, REGION, ec2, moto_images, on_every_client  # noqa: F401
from test_labs import make_lab

from lab import cli, cost, expiry
from lab.commands import up as up_command
from labcore.tags import lab_filter, tags_of

MUTATING = ("Create", "Import", "Run", "Authorize", "Attach", "Modify", "Delete", "Terminate", "Revoke")


@pytest.fixture
def config(tmp_path):
    def write(extra: str = "") -> str:
        path = tmp_path / "lab.yaml"
        text = CONFIG.replace("allow_from: [auto]", f"allow_from: [{CALLER}]")
        if extra.startswith("expires_after:"):
            text = re.sub(r"(?m)^expires_after:.*$", extra.strip(), text)
        path.write_text(text)
        return str(path)
    return write


def lab(*args: str) -> int:
    return cli.main([*args, "--target", "aws"])


def all_tagged(ec2, name: str = "rocky-lab") -> list[dict]:
    """Every resource of the lab, as describe answers (instances, volumes, groups, key pairs)."""
    found = [i for r in ec2.describe_instances(Filters=lab_filter(name))["Reservations"] for i in r["Instances"]
             if i["State"]["Name"] != "terminated"]
    found += ec2.describe_volumes(Filters=lab_filter(name))["Volumes"]
    found += ec2.describe_security_groups(Filters=lab_filter(name))["SecurityGroups"]
    return found + ec2.describe_key_pairs(Filters=lab_filter(name))["KeyPairs"]


def test_the_cost_line_comes_before_the_first_mutating_call_and_matches_the_table(ec2, config, monkeypatch):
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(up_command, "say", lambda line: events.append(("say", line)))
    on_every_client(monkeypatch, lambda c: c.meta.events.register(
        "before-call.ec2", lambda model, **_: events.append(("call", model.name))))
    assert lab("up", "--no-ssh", "--config", config()) == 0
    first_create = next(i for i, (kind, what) in enumerate(events) if kind == "call" and what.startswith(MUTATING))
    cost_at = next(i for i, (kind, what) in enumerate(events) if kind == "say" and what.startswith("cost: "))
    assert cost_at < first_create
    seoul = cost.price_table().regions[REGION]
    hourly = seoul.instances["t3.large"] + 2 * seoul.instances["t3.medium"] + 100 * seoul.volumes["gp3"] / 730 + 0.015
    assert f"${hourly:.3f}/hour" in events[cost_at][1] and f"${24 * hourly:.2f}/day" in events[cost_at][1]


def test_dry_run_says_the_cost_and_calls_nothing(config, capsys, monkeypatch):
    from lab.target import Target

    built = []
    monkeypatch.setattr(Target, "ec2_client", lambda self, region: built.append(region))
    assert lab("up", "--dry-run", "--config", config()) == 0
    out = capsys.readouterr().out
    assert out.startswith("cost: $") and "--dry-run" in out and "3 instances" in out and "expire after 8h" in out
    assert built == []


def test_every_resource_carries_the_expiry_and_every_instance_terminates_on_shutdown(ec2, config, capsys):
    before = expiry.now()
    assert lab("up", "--no-ssh", "--config", config()) == 0
    assert "the lab expires" in capsys.readouterr().out
    resources = all_tagged(ec2)
    assert len(resources) == 3 + 3 + 4 + 1 + 1  # instances, root volumes, Swift volumes, group, key pair
    moments = {tags_of(r).get("lab:expires-at") for r in resources}
    assert len(moments) == 1
    moment = expiry.parse_tag(moments.pop())
    assert before + timedelta(hours=8) <= moment <= expiry.now() + timedelta(hours=8)
    for instance in (r for r in resources if "InstanceId" in r and "VolumeId" not in r):
        answer = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                                 Attribute="instanceInitiatedShutdownBehavior")
        assert answer["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"


def test_a_new_expires_after_or_extend_moves_the_time_on_every_resource(ec2, config, capsys):
    assert lab("up", "--no-ssh", "--config", config()) == 0
    first = {tags_of(r)["lab:expires-at"] for r in all_tagged(ec2)}
    assert lab("up", "--no-ssh", "--config", config()) == 0  # the same config: the same time
    assert {tags_of(r)["lab:expires-at"] for r in all_tagged(ec2)} == first
    assert lab("up", "--no-ssh", "--config", config("expires_after: 2h\n")) == 0
    moved = {tags_of(r)["lab:expires-at"] for r in all_tagged(ec2)}
    assert len(moved) == 1 and moved != first
    assert expiry.parse_tag(moved.pop()) <= expiry.now() + timedelta(hours=2)
    capsys.readouterr()
    assert lab("extend", "3d", "--no-ssh", "--config", config("expires_after: 2h\n")) == 0
    out = capsys.readouterr().out
    extended = {tags_of(r)["lab:expires-at"] for r in all_tagged(ec2)}
    assert len(extended) == 1 and f"now expires {next(iter(extended))}" in out
    assert expiry.parse_tag(extended.pop()) >= expiry.now() + timedelta(days=3) - timedelta(minutes=1)
    from labcore.inventory import load_inventory
    from labcore.paths import LabPaths

    assert load_inventory(LabPaths.for_lab("rocky-lab").inventory).expires_at == next(iter(
        {tags_of(r)["lab:expires-at"] for r in all_tagged(ec2)}))  # the inventory moved too
    # the next `up` with the same config keeps the extended time
    assert lab("up", "--no-ssh", "--config", config("expires_after: 2h\n")) == 0
    assert expiry.parse_tag({tags_of(r)["lab:expires-at"] for r in all_tagged(ec2)}.pop()) >= \
        expiry.now() + timedelta(days=3) - timedelta(minutes=1)


def test_a_lab_that_never_expires_says_so_at_every_up(ec2, config, capsys):
    assert lab("up", "--no-ssh", "--config", config("expires_after: never\n")) == 0
    out = capsys.readouterr().out
    assert "warning: expires_after is never" in out and "never expires" in out
    assert not any("lab:expires-at" in tags_of(r) for r in all_tagged(ec2))


def test_down_expired_removes_only_expired_labs_and_nothing_untagged(ec2, config, capsys):
    make_lab(ec2, "old-lab", 2, timedelta(minutes=-10))
    make_lab(ec2, "young-lab", 1, timedelta(hours=5))
    make_lab(ec2, "forever-lab", 1, None)
    image = ec2.register_image(Name="theirs", RootDeviceName="/dev/sda1")["ImageId"]
    theirs = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    their_volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=5)["VolumeId"]
    assert lab("down", "--expired", "--config", config()) == 0
    out = capsys.readouterr().out
    assert "lab old-lab expired" in out and "young-lab" not in out and "forever-lab" not in out
    assert all_tagged(ec2, "old-lab") == []
    assert len(all_tagged(ec2, "young-lab")) == 3 and len(all_tagged(ec2, "forever-lab")) == 3
    state = ec2.describe_instances(InstanceIds=[theirs])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    assert ec2.describe_volumes(VolumeIds=[their_volume])["Volumes"][0]["State"] == "available"
    assert lab("down", "--expired", "--config", config()) == 0
    assert "no expired lab" in capsys.readouterr().out


def test_status_shows_how_long_the_lab_has_run_its_cost_so_far_and_the_time_left(ec2, config, capsys):
    assert lab("up", "--no-ssh", "--config", config()) == 0
    capsys.readouterr()
    assert lab("status", "--config", config()) == 0
    out = capsys.readouterr().out
    assert "running for" in out and "cost so far $" in out and re.search(r"expires \S+Z \(in (7h 59m|8h)\)", out)
    assert lab("status", "--json", "--config", config()) == 0
    life = json.loads(capsys.readouterr().out)["lifetime"]
    assert life["price_per_hour"] > 0 and life["expires_at"].endswith("Z")
