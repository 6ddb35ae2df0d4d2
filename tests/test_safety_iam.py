"""IAM_ACTIONS (lab/ec2.py), the README's IAM policy, lists every EC2 action the lab's code calls.

The code is read, not run: every boto3 EC2 method name (describe_instances, ...) that appears
in lab/, labcore/ or bootstrap/, as an attribute, a paginator's or a waiter's name, is an
action the lab may call; a missing one would be an UnauthorizedOperation on someone's first run.
"""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest

from lab.ec2 import IAM_ACTIONS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lab", "labcore", "bootstrap")


@pytest.fixture(scope="module")
def ec2_model():
    """The EC2 client's method -> operation names, and waiter -> operation, from botocore's model (no call)."""
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    waiters = {name: client.get_waiter(name).config.operation for name in client.waiter_names}
    return client.meta.method_to_api_mapping, waiters


def ec2_operations_in(text: str, model) -> set[str]:
    methods, waiters = model
    words = set(re.findall(r"\b[a-z][a-z0-9_]*\b", text))
    return {methods[w] for w in words if w in methods} | {waiters[w] for w in words if w in waiters}


def called_operations(model) -> dict[str, set[str]]:
    """operation -> the files that name it."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for operation in ec2_operations_in(path.read_text(), model):
                found.setdefault(operation, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_ec2_action_the_code_calls_is_in_iam_actions(ec2_model):
    called = called_operations(ec2_model)
    missing = {f"ec2:{op}": sorted(files) for op, files in called.items() if f"ec2:{op}" not in IAM_ACTIONS}
    assert not missing, f"add these to IAM_ACTIONS in lab/ec2.py (and the README): {missing}"
    assert "RunInstances" in called and "GetConsoleOutput" in called  # the reader does find calls


def test_the_reader_finds_attribute_paginator_and_waiter_calls(ec2_model):
    text = ('ec2.describe_hosts(Filters=[])\npages = ec2.get_paginator("describe_vpc_endpoints")\n'
            'ec2.get_waiter("snapshot_completed").wait()\n_pages(ec2, "describe_route_tables", "RouteTables")\n')
    assert ec2_operations_in(text, ec2_model) == {"DescribeHosts", "DescribeVpcEndpoints", "DescribeSnapshots",
                                                  "DescribeRouteTables"}


def test_iam_actions_are_real_ec2_actions_listed_once_in_order(ec2_model):
    operations = set(ec2_model[0].values())
    assert all(a.startswith("ec2:") and a[4:] in operations for a in IAM_ACTIONS)
    assert list(IAM_ACTIONS) == sorted(set(IAM_ACTIONS))
    # Tagging at creation (TagSpecifications) needs ec2:CreateTags although the lab never calls it by name.
    assert "ec2:CreateTags" in IAM_ACTIONS


def test_the_readmes_iam_list_is_iam_actions():
    readme = (ROOT / "README.md").read_text()
    listed = readme.split("**IAM permissions**")[1].split(". A refusal")[0]
    names = re.findall(r"\b([A-Z][A-Za-z]+)\b", listed.split("`ec2:`", 1)[1])
    assert sorted(f"ec2:{n}" for n in names) == list(IAM_ACTIONS)
