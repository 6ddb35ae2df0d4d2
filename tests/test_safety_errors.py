"""What a person reads when EC2 says no, when the network drops, or when there are no credentials.

Each refusal is injected into the lab's own clients with a botocore hook (test_safety_support.Faults)
against moto; the CLI ones run `lab up --no-ssh` / `lab down` against a moto server on
127.0.0.1. The line must say what to do, the exit code must be 1, no traceback.
"""

from __future__ import annotations

import os
import re

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from moto import mock_aws
from test_safety_support import (  # noqa: F401 (endpoint: a fixture)
    REGION,
    Faults,
    cli_config,
    endpoint,
    share_botocore_session,
)

from lab import cli, ec2_errors
from lab import ec2 as lab_ec2
from lab.target import AwsTarget
from labcore.errors import CloudError
from labcore.paths import LabPaths, state_root

VCPU_MESSAGE = ("You have requested more vCPU capacity than your current vCPU limit of 4 allows for the instance "
                "bucket that the specified instance type belongs to. Please visit "
                "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.")


@pytest.fixture(scope="module")
def _moto():
    with mock_aws():
        yield


@pytest.fixture
def moto_ec2(_moto, monkeypatch):
    """In-process moto (one for the module); the lab's client comes from AwsTarget, as in `lab up`."""
    share_botocore_session(monkeypatch)
    return AwsTarget().ec2_client(REGION)


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------- quotas and account state, through the CLI
def test_vcpu_limit_says_how_many_vcpus_the_lab_needs_and_which_quota_to_raise(endpoint, tmp_path, monkeypatch,
                                                                               capsys):
    faults = Faults(monkeypatch).error("RunInstances", "VcpuLimitExceeded", times=99, message=VCPU_MESSAGE)
    config = cli_config(tmp_path, endpoint, "quota-lab")

    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 1

    err = _one_line(capsys.readouterr().err)
    # configs/lab.yaml: a t3.large controller and two t3.medium object nodes, 2 vCPUs each (DescribeInstanceTypes)
    assert "the lab needs 6 vCPUs (1 x t3.large of 2, 2 x t3.medium of 2)" in err
    assert "the account's vCPU limit of 4 in ap-northeast-2" in err
    assert '"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" (L-1216C47A)' in err
    assert ("aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-1216C47A "
            "--region ap-northeast-2 --desired-value 10") in err
    assert err.rstrip().endswith("then run `lab up` again")
    assert faults.calls["RunInstances"] >= 1 and faults.calls["DescribeInstanceTypes"] == 1


def test_vcpu_limit_of_a_family_with_its_own_quota_does_not_name_the_standard_one(moto_ec2):
    ec2_errors.LAB_INSTANCE_TYPES.clear()
    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(_refusing(moto_ec2, "VcpuLimitExceeded", VCPU_MESSAGE), ImageId="ami-12345678",
                           InstanceType="p3.2xlarge", MinCount=1, MaxCount=1)
    assert "L-1216C47A" not in str(failure.value) and "Service Quotas console" in str(failure.value)


def test_a_refusal_inside_a_helper_still_finds_its_client_and_request(moto_ec2):
    """with_retry(helper, ec2, request), as lab/instances.py launches: region and request are found."""
    ec2_errors.LAB_INSTANCE_TYPES.clear()
    _refusing(moto_ec2, "VcpuLimitExceeded", VCPU_MESSAGE)

    def launch(ec2, request):
        return ec2.run_instances(**request)

    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(launch, moto_ec2, {"ImageId": "ami-12345678", "InstanceType": "m5.xlarge",
                                              "MinCount": 1, "MaxCount": 1})
    text = str(failure.value)
    assert "this launch needs 4 vCPUs (1 x m5.xlarge of 4), and the account's vCPU limit of 4 in ap-northeast-2" \
        in text
    assert "--region ap-northeast-2 --desired-value 8" in text


def _refusing(client, code: str, message: str, operation: str = "RunInstances"):
    """A bound method of a real moto client that answers code (as run_instances would be called)."""
    client.meta.events.register(f"before-call.ec2.{operation}", lambda **_: (
        type("R", (), {"status_code": 400, "headers": {}})(),
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}))
    return getattr(client, {"RunInstances": "run_instances", "DescribeVpcs": "describe_vpcs"}[operation])


@pytest.mark.parametrize("code,message,expected", [
    ("PendingVerification", "Your request for accessing resources in this region is being validated",
     "AWS is still verifying your account for ap-northeast-2 (normally minutes, at most 4 hours"),
    ("OptInRequired", "You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.",
     "enable the region ap-northeast-2 in the AWS console (Account, AWS Regions), or subscribe to the image"),
    ("AuthFailure", "AWS was not able to validate the provided access credentials",
     ("EC2 does not accept these credentials (AWS was not able to validate the provided access credentials); "
      "check which identity you use with `aws sts get-caller-identity`")),
    ("ExpiredToken", "The security token included in the request is expired",
     "your temporary AWS credentials have expired; renew them (`aws sso login`"),
    ("RequestExpired", "Request has expired.",
     "this machine's clock is off or its temporary credentials have expired; sync the clock"),
    ("Blocked", "This account is currently blocked", "contact AWS Support"),
])
def test_account_and_credential_refusals_are_one_line_that_says_what_to_do(moto_ec2, code, message, expected):
    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(_refusing(moto_ec2, code, message, "DescribeVpcs"))
    text = str(failure.value)
    assert text.startswith(f"EC2 refused DescribeVpcs: {code}: ") and expected in text
    assert text.endswith("then run the command again") and "\n" not in text
    assert failure.value.exit_code == 1 and failure.value.code == code


def test_refusals_are_not_retried(moto_ec2):
    calls = []
    moto_ec2.meta.events.register("before-call.ec2.DescribeVpcs", lambda **_: calls.append(1))
    with pytest.raises(CloudError):
        lab_ec2.with_retry(_refusing(moto_ec2, "PendingVerification", "validating", "DescribeVpcs"))
    assert len(calls) == 1


# ---------------------------------------------------------------- missing IAM permissions
def test_unauthorized_operation_names_the_iam_action_of_the_operation(moto_ec2):
    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(_refusing(moto_ec2, "UnauthorizedOperation",
                                     "You are not authorized to perform this operation.", "DescribeVpcs"))
    text = str(failure.value)
    assert "your AWS identity may not call ec2:DescribeVpcs; add it to the IAM policy" in text
    assert "the README lists every action the lab needs" in text and text.endswith("run the command again")


def test_unauthorized_operation_names_the_action_aws_names_and_keeps_the_encoded_reason_for_decoding(moto_ec2):
    encoded = "Ab3" * 400  # AWS's encoded reasons run to kilobytes: not for the terminal
    message = (f"You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/dev is not "
               f"authorized to perform: ec2:CreateTags on resource: arn:aws:ec2:ap-northeast-2:123456789012:"
               f"instance/* because no identity-based policy allows the ec2:CreateTags action. "
               f"Encoded authorization failure message: {encoded}")
    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(_refusing(moto_ec2, "UnauthorizedOperation", message), ImageId="ami-12345678",
                           InstanceType="t3.large", MinCount=1, MaxCount=1)
    text = str(failure.value)
    assert "may not call ec2:CreateTags" in text and encoded not in text and len(text) < 600
    saved = state_root() / "authorization-failure-RunInstances.txt"
    assert saved.read_text().strip() == encoded and oct(os.stat(saved).st_mode & 0o777) == "0o600"
    assert f'aws sts decode-authorization-message --encoded-message "$(cat {saved})"' in text


def test_unauthorized_through_the_cli_is_exit_1_in_one_line(endpoint, tmp_path, monkeypatch, capsys):
    Faults(monkeypatch).error("CreateSecurityGroup", "UnauthorizedOperation", times=99,
                              message="You are not authorized to perform this operation.")
    config = cli_config(tmp_path, endpoint, "denied-lab")
    assert cli.main(["up", "--no-ssh", "--config", config, "--target", "aws"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("lab up: EC2 refused CreateSecurityGroup: UnauthorizedOperation: your AWS identity "
                          "may not call ec2:CreateSecurityGroup")


# ---------------------------------------------------------------- no credentials at all
@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """No credentials anywhere boto3 looks; instance metadata off; the endpoint a closed port here."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    config = tmp_path / "lab.yaml"
    config.write_text("name: nocreds-lab\nregion: ap-northeast-2\nssh: {allow_from: [203.0.113.9/32]}\n"
                      "nodes:\n  controller: {role: controller, type: t3.large}\n")
    return str(config)


def test_up_without_credentials_says_how_to_set_them_before_any_call(no_credentials, monkeypatch, capsys):
    faults = Faults(monkeypatch)
    assert cli.main(["up", "--no-ssh", "--config", no_credentials, "--target", "aws"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("lab up: no AWS credentials found: set AWS_PROFILE to a profile of ~/.aws/config, run "
                          "`aws configure`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    assert faults.calls == {}  # not one EC2 call was attempted
    paths = LabPaths.for_lab("nocreds-lab")
    assert not any(p.exists() for p in (paths.key_file, paths.secrets, paths.inventory, paths.ssh_config))


def test_down_without_credentials_is_one_line_too(no_credentials, capsys):
    assert cli.main(["down", "--config", no_credentials, "--target", "aws"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("lab down: no AWS credentials found: set AWS_PROFILE")


def test_an_unknown_profile_is_named(no_credentials, monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert cli.main(["up", "--no-ssh", "--config", no_credentials, "--target", "aws"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "the AWS profile 'no-such-profile' (AWS_PROFILE) is not in ~/.aws/config" in err


def test_start_with_credentials_sends_nothing_and_remembers_the_labs_instance_types():
    from lab.config import parse_config

    spec = parse_config("name: typed-lab\nregion: ap-northeast-2\nssh: {allow_from: [203.0.113.9/32]}\nnodes:\n"
                        "  controller: {role: controller, type: t3.large}\n"
                        "  object1: {role: object, type: m5.xlarge, volumes: {sdb: 10}}\n", "lab.yaml")
    AwsTarget().start(spec, progress=lambda line: None)
    assert ec2_errors.LAB_INSTANCE_TYPES == {"controller": "t3.large", "object1": "m5.xlarge"}


# ---------------------------------------------------------------- the network and EC2's own failures
EC2_URL = "https://ec2.ap-northeast-2.amazonaws.com"


@pytest.mark.parametrize("failure", [lambda: ReadTimeoutError(endpoint_url=EC2_URL),
                                     lambda: ConnectionClosedError(endpoint_url=EC2_URL)],
                         ids=["read-timeout", "connection-closed"])
def test_lost_answers_are_retried_and_counted(moto_ec2, monkeypatch, failure):
    faults = Faults(monkeypatch).raise_("DescribeVpcs", failure, times=2)
    client = AwsTarget().ec2_client(REGION)
    assert lab_ec2.with_retry(client.describe_vpcs)["Vpcs"]
    assert faults.calls["DescribeVpcs"] == 3
    assert sum(lab_ec2.retry_counts().values()) == 2


def test_an_answer_lost_every_time_gives_up_saying_how_often_over_how_long(moto_ec2, monkeypatch):
    Faults(monkeypatch).raise_("DescribeVpcs", lambda: ReadTimeoutError(endpoint_url="https://ec2.example"),
                               times=99)
    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(AwsTarget().ec2_client(REGION).describe_vpcs)
    # The seconds are wall time (the test's waits are zero), so a loaded machine may read 1 s.
    assert re.fullmatch(r"EC2 did not answer \(ReadTimeoutError at https://ec2\.example\) after 8 attempts "
                        r"over [0-9] s; check this machine's network connection, then run the command again "
                        r"\(it goes on from where it stopped\)", str(failure.value)), str(failure.value)
    assert lab_ec2.retry_counts() == {"ReadTimeoutError": 7}


def test_5xx_answers_are_retried_until_ec2_answers(moto_ec2, monkeypatch):
    faults = (Faults(monkeypatch).error("DescribeSubnets", "InternalError", times=1, status=500)
              .error("DescribeSubnets", "Unavailable", times=1, status=503))
    assert lab_ec2.with_retry(AwsTarget().ec2_client(REGION).describe_subnets)["Subnets"]
    assert faults.calls["DescribeSubnets"] == 3
    assert lab_ec2.retry_summary() == "EC2 calls retried 2 times: 1 InternalError, 1 Unavailable"


def test_a_create_whose_answer_was_lost_but_went_through_says_to_run_again(moto_ec2, monkeypatch):
    """The first CreateSecurityGroup reaches EC2 but its answer is lost; the retry is told Duplicate."""
    faults = Faults(monkeypatch)
    bystander = boto3.client("ec2", region_name=REGION)

    def went_through():
        bystander.create_security_group(GroupName="lost-answer", Description="d")
        return ReadTimeoutError(endpoint_url="https://ec2.example")

    faults.raise_("CreateSecurityGroup", went_through, times=1)
    with pytest.raises(CloudError) as failure:
        lab_ec2.with_retry(AwsTarget().ec2_client(REGION).create_security_group, GroupName="lost-answer",
                           Description="d")
    assert str(failure.value).startswith(
        "EC2 refused CreateSecurityGroup: InvalidGroup.Duplicate after an earlier attempt ended in ReadTimeoutError: "
        "that attempt was carried out after all; run the command again")


def test_no_endpoint_at_all_is_not_retried_and_says_what_to_check(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    calls = []
    client = AwsTarget().ec2_client(REGION)
    client.meta.events.register("before-send.ec2", lambda **_: calls.append(1))
    with pytest.raises(CloudError, match="cannot reach EC2: .*127.0.0.1:9.*; check the network, the region and "
                                         "AWS_ENDPOINT_URL if it is set, then run the command again"):
        lab_ec2.with_retry(client.describe_vpcs)
    assert len(calls) == 1



# ---------------------------------------------------------------- every line ends with the next step
@pytest.mark.parametrize("code", sorted({*ec2_errors._EXPLAIN, *ec2_errors.CREDENTIALS_REJECTED,
                                         *ec2_errors.CREDENTIALS_EXPIRED, "InvalidAMIID.Malformed"}))
def test_every_refusal_line_says_what_to_do_next(code):
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": code, "Message": "x " * 400}}, "RunInstances")
    text = str(ec2_errors.refusal(exc, None, {"InstanceType": "t3.large", "MaxCount": 1}))
    assert re.search(r"run (the command|`lab up`)( again| in a few minutes)", text), text
    assert "\n" not in text and len(text) < 900  # AWS's message is quoted cut short


@pytest.mark.parametrize("failure", [
    lambda e: e.NoCredentialsError(),
    lambda e: e.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
    lambda e: e.ProfileNotFound(profile="dev"), lambda e: e.TokenRetrievalError(provider="sso", error_msg="expired"),
    lambda e: e.UnauthorizedSSOTokenError(), lambda e: e.CredentialRetrievalError(provider="process", error_msg="x"),
], ids=["none", "partial", "profile", "sso-token", "sso-unauthorized", "process"])
def test_every_credentials_problem_is_one_line_with_the_next_step(failure):
    import botocore.exceptions

    explained = ec2_errors.credentials_problem(failure(botocore.exceptions))
    assert explained is not None and explained.exit_code == 1
    assert str(explained).endswith("then run the command again") and "\n" not in str(explained)
