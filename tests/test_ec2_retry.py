"""The retry policy on its own: which EC2 answers are retried, how often, and what the user reads."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from tenacity import wait_none

from lab import ec2
from labcore import tags
from labcore.errors import CloudError


@pytest.fixture(autouse=True)
def _no_backoff():
    ec2.set_backoff(wait_none())
    yield
    ec2.set_backoff(None)


class Flaky:
    """An EC2 operation that answers `code` the first `times` calls, then succeeds."""

    def __init__(self, code: str, times: int, operation: str = "DescribeInstances"):
        self.code, self.left, self.operation, self.calls = code, times, operation, 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise ClientError({"Error": {"Code": self.code, "Message": f"{self.code} (injected)"}}, self.operation)
        return {"ok": kwargs}


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "Throttling", "DependencyViolation",
                                  "IncorrectState", "IncorrectInstanceState", "VolumeInUse"])
def test_transient_errors_are_retried_until_ec2_answers(code):
    fn = Flaky(code, times=3)
    assert ec2.call(fn, InstanceIds=["i-1"]) == {"ok": {"InstanceIds": ["i-1"]}}
    assert fn.calls == 4


@pytest.mark.parametrize("code", ["InvalidInstanceID.NotFound", "InvalidVolume.NotFound",
                                  "InvalidGroup.NotFound", "InvalidKeyPair.NotFound"])
def test_not_found_right_after_create_is_retried_only_when_asked(code):
    fn = Flaky(code, times=2)
    assert ec2.call(fn, retry_not_found=True) == {"ok": {}}
    assert fn.calls == 3

    fn = Flaky(code, times=2)
    with pytest.raises(CloudError, match=f"EC2 refused DescribeInstances: {code}"):
        ec2.call(fn)
    assert fn.calls == 1


def test_a_real_error_fails_at_once_with_awss_message_and_the_next_step():
    fn = Flaky("InvalidParameterValue", times=99, operation="RunInstances")
    with pytest.raises(CloudError, match="RunInstances: InvalidParameterValue: InvalidParameterValue \\(injected\\); "
                                         ".*then run the command again$"):
        ec2.call(fn, retry_not_found=True)
    assert fn.calls == 1


def test_retries_are_bounded_and_say_what_kept_failing_how_often_over_how_long():
    fn = Flaky("Throttling", times=99)
    with pytest.raises(CloudError, match="EC2 kept answering Throttling for DescribeInstances after 8 attempts "
                                         "over [0-9] s; wait a few minutes, then run the command again"):
        ec2.call(fn)
    assert fn.calls == ec2.RETRY_ATTEMPTS == 8


@pytest.mark.parametrize("code", ["InternalError", "InternalFailure", "Unavailable", "ServiceUnavailable",
                                  "RequestTimeout"])
def test_server_side_failures_are_retried(code):
    fn = Flaky(code, times=2)
    assert ec2.call(fn) == {"ok": {}}
    assert fn.calls == 3


def test_any_5xx_answer_is_retried_whatever_its_code():
    class Answer500(Flaky):
        def __call__(self, **kwargs):
            self.calls += 1
            if self.calls == 1:
                raise ClientError({"Error": {"Code": "SomethingNew", "Message": "oops"},
                                   "ResponseMetadata": {"HTTPStatusCode": 503}}, "DescribeVolumes")
            return {"ok": kwargs}

    fn = Answer500("", 0)
    assert ec2.call(fn) == {"ok": {}} and fn.calls == 2


def test_no_capacity_is_an_answer_not_a_5xx_to_retry_in_place():
    class NoCapacity(Flaky):
        def __call__(self, **kwargs):
            self.calls += 1
            raise ClientError({"Error": {"Code": "InsufficientInstanceCapacity", "Message": "no t3.large"},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, "RunInstances")

    fn = NoCapacity("", 0)
    with pytest.raises(CloudError, match="InsufficientInstanceCapacity"):
        ec2.call(fn)
    assert fn.calls == 1


def test_every_retry_is_counted_by_its_cause_for_the_runs_summary():
    ec2.reset_retry_counts()
    assert ec2.retry_summary() == ""
    ec2.call(Flaky("RequestLimitExceeded", times=3))
    ec2.call(Flaky("InternalError", times=1))
    ec2.call(Flaky("IncorrectState", times=1))
    assert ec2.retry_counts() == {"RequestLimitExceeded": 3, "InternalError": 1, "IncorrectState": 1}
    assert ec2.retry_summary() == ("EC2 calls retried 5 times: 3 RequestLimitExceeded, 1 IncorrectState, "
                                   "1 InternalError")
    with pytest.raises(CloudError):
        ec2.call(Flaky("Throttling", times=99))
    assert ec2.retry_counts()["Throttling"] == ec2.RETRY_ATTEMPTS - 1  # the last failure is not a retry
    ec2.reset_retry_counts()
    assert ec2.retry_counts() == {}


def test_errors_that_are_not_from_ec2_pass_through_untouched():
    def broken():
        raise KeyError("Reservations")

    with pytest.raises(KeyError):
        ec2.with_retry(broken)


def test_default_backoff_is_jittered_exponential_and_bounded():
    ec2.set_backoff(None)
    wait = ec2._backoff()
    first = [wait(_State(1)) for _ in range(50)]
    late = [wait(_State(30)) for _ in range(50)]
    assert all(0 <= w <= ec2.RETRY_WAIT_SECONDS * 2 for w in first)
    assert len(set(first)) > 1  # jitter: not every client retries at the same instant
    assert max(late) <= ec2.RETRY_MAX_WAIT_SECONDS


class _State:
    """The part of tenacity's RetryCallState a wait strategy reads."""

    def __init__(self, attempt: int):
        self.attempt_number = attempt


def test_lab_tags_name_every_resource_after_lab_and_node():
    assert tags.lab_tags("rocky-lab", "object1", "object", extra={"team": "infra"}) == {
        "team": "infra", "lab:name": "rocky-lab", "Name": "rocky-lab-object1", "lab:node": "object1",
        "lab:role": "object"}
    assert tags.lab_tags("rocky-lab") == {"lab:name": "rocky-lab", "Name": "rocky-lab"}
    assert tags.tag_spec("volume", {"lab:name": "x"}) == {"ResourceType": "volume",
                                                         "Tags": [{"Key": "lab:name", "Value": "x"}]}
    assert tags.lab_filter("x") == [{"Name": "tag:lab:name", "Values": ["x"]}]
