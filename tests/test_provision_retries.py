"""`lab up` on moto retries only what is transient: throttling and NotFound right after a create
converge, a real error fails at once with AWS's own message, and retries that run out say so."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    ec2,
    lab_instances,
    moto_images,
    run_up,
    spec_with,
    with_fewer_volumes,
)

from lab.target import Target
from labcore.errors import CloudError


class Faults:
    """The first `times` calls of an operation fail with `code` (botocore before-call hook)."""

    def __init__(self, monkeypatch, operation: str, code: str, times: int, when=lambda params: True):
        self.left, self.seen, self.when = times, 0, when
        real = Target.ec2_client

        def client(target, region):
            c = real(target, region)
            c.meta.events.register(f"before-call.ec2.{operation}", self.hook)
            return c

        monkeypatch.setattr(Target, "ec2_client", client)
        self.code, self.operation = code, operation

    def hook(self, params=None, **kwargs):
        self.seen += 1
        if self.left > 0 and self.when(params or {}):
            self.left -= 1
            raise ClientError({"Error": {"Code": self.code, "Message": "injected"}}, self.operation)


def _by_id(params):
    """EC2 answers NotFound right after a create only to a lookup by id."""
    return "InstanceId.1" in str(params.get("body", ""))


def _volume_by_id(params):
    return "VolumeId.1" in str(params.get("body", ""))


@pytest.mark.parametrize("operation,code,when,grow", [
    ("DescribeInstances", "RequestLimitExceeded", None, False),
    ("RunInstances", "Throttling", None, False),
    ("CreateTags", "RequestLimitExceeded", None, False),
    ("CreateTags", "InvalidVolume.NotFound", None, False),  # tagging a volume EC2 does not show yet
    ("DescribeInstances", "InvalidInstanceID.NotFound", _by_id, False),
    ("DescribeSecurityGroups", "InvalidGroup.NotFound", lambda params: "GroupId.1" in str(params.get("body", "")),
     False),
    # A volume added to nodes that run already: created, waited for, attached.
    ("CreateVolume", "RequestLimitExceeded", None, True),
    ("AttachVolume", "IncorrectState", None, True),
    ("DescribeVolumes", "InvalidVolume.NotFound", _volume_by_id, True),
    ("ModifyInstanceAttribute", "RequestLimitExceeded", None, True)])
def test_transient_errors_are_retried_and_the_lab_converges(ec2, monkeypatch, operation, code, when, grow):
    if grow:
        run_up(spec_with(text=with_fewer_volumes()))
    faults = Faults(monkeypatch, operation, code, times=3, when=when or (lambda params: True))
    report = run_up(spec_with())
    assert faults.left == 0
    assert len(report.inventory.nodes) == 3 and len(lab_instances(ec2)) == 3
    vols = ec2.describe_volumes(Filters=[{"Name": "tag:lab:volume", "Values": ["sdb", "sdc"]}])["Volumes"]
    assert len(vols) == 4 and all(v["State"] == "in-use" for v in vols)


def test_a_real_error_fails_at_once_with_awss_message(ec2, monkeypatch):
    faults = Faults(monkeypatch, "CreateSecurityGroup", "UnauthorizedOperation", times=99)
    with pytest.raises(CloudError, match="UnauthorizedOperation"):
        run_up(spec_with())
    assert faults.seen == 1
    assert lab_instances(ec2) == []


def test_retries_that_run_out_say_so(ec2, monkeypatch):
    Faults(monkeypatch, "DescribeVpcs", "RequestLimitExceeded", times=99)
    with pytest.raises(CloudError, match="kept answering RequestLimitExceeded .* after 8 attempts"):
        run_up(spec_with())
