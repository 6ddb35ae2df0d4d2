"""Calling EC2: which failures are worth another try, how long to keep trying, and how many it took.

Retried, bounded and with jittered backoff: throttling; 5xx answers (EC2 had a problem,
not the request); read timeouts and connections reset or closed mid-answer; a resource in
a passing state (a security group still held by terminating instances, an instance still
pending); and `*.NotFound` where the caller says the resource was just created (EC2 is
eventually consistent). Anything else is a real answer: it fails at once, as one line that
says what to do (lab/ec2_errors.py). Every retry is counted by what caused it, for the one
line `lab up` and `lab down` print at the end (retry_summary).

botocore's own retries are off (lab/target.py, CLIENT_CONFIG), so this is the only policy.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable, Mapping, TypeVar

from botocore.client import BaseClient
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from lab import ec2_errors

T = TypeVar("T")

# The union of what EC2 and botocore's standard retry mode call throttling.
THROTTLING = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
                        "RequestThrottledException", "ThrottledException", "TooManyRequestsException",
                        "EC2ThrottledException", "BandwidthLimitExceeded", "SlowDown"})
# EC2's side failed (5xx), or the request timed out on its way: the same request may succeed.
SERVER_ERRORS = frozenset({"InternalError", "InternalFailure", "InternalServerError", "ServerInternal",
                           "ServiceUnavailable", "Unavailable", "ServiceUnavailableException",
                           "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
BUSY = frozenset({"DependencyViolation", "IncorrectState", "IncorrectInstanceState", "VolumeInUse"})
# The answer was lost on the way (the request may or may not have been carried out).
TRANSPORT_ERRORS = (ReadTimeoutError, ConnectTimeoutError, ConnectionClosedError)
RETRY_ATTEMPTS = 8
RETRY_DEADLINE_SECONDS = 180.0  # a read timeout costs read_timeout (60 s) per attempt: bound the whole too
RETRY_WAIT_SECONDS = 0.5  # first backoff; doubles, with full jitter
RETRY_MAX_WAIT_SECONDS = 20.0
# None: jittered exponential backoff from the two settings above. Tests and the benchmark
# shrink it with set_backoff(wait_none()) so a retried call costs no wall time there.
WAIT: wait_base | None = None

# Every `ec2:` action the lab calls (tests/test_safety_iam.py reads lab/ and fails when one
# is missing), for the README's IAM policy. ec2:CreateTags: every create tags at creation
# (TagSpecifications, which EC2 authorizes as CreateTags); `up` also tags launched volumes
# with lab:volume and lab:ssh-user, and `up`/`extend` move the expiry tags. Encrypted volumes
# with the account's default EBS key need no ec2: action beyond RunInstances/CreateVolume
# (the README's IAM section says what they need of KMS).
IAM_ACTIONS = (
    "ec2:AttachVolume", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup", "ec2:CreateTags",
    "ec2:CreateVolume", "ec2:DeleteKeyPair", "ec2:DeleteSecurityGroup", "ec2:DeleteTags", "ec2:DeleteVolume",
    "ec2:DescribeImages", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances", "ec2:DescribeKeyPairs", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeVpcAttribute", "ec2:DescribeVpcs",
    "ec2:DetachVolume", "ec2:GetConsoleOutput",
    "ec2:ImportKeyPair", "ec2:ModifyInstanceAttribute", "ec2:RebootInstances", "ec2:RevokeSecurityGroupIngress",
    "ec2:RunInstances", "ec2:StopInstances", "ec2:TerminateInstances",
)

_retries: Counter[str] = Counter()
_retries_lock = threading.Lock()


def set_backoff(wait: wait_base | None) -> None:
    """Replace the backoff between retries (None restores the default jittered exponential)."""
    global WAIT
    WAIT = wait


def _backoff() -> wait_base:
    return WAIT if WAIT is not None else wait_random_exponential(multiplier=RETRY_WAIT_SECONDS,
                                                                 max=RETRY_MAX_WAIT_SECONDS)


def set_lab_instance_types(types: Mapping[str, str]) -> None:
    """Node -> instance type of the lab in hand, so a vCPU quota refusal can say what the lab needs."""
    ec2_errors.LAB_INSTANCE_TYPES.clear()
    ec2_errors.LAB_INSTANCE_TYPES.update(types)


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def _status(exc: BaseException) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if isinstance(exc, ClientError) else 0


def is_server_error(exc: BaseException) -> bool:
    """EC2's side failed. Its Insufficient*Capacity answers are 5xx too, but they are answers
    (lab/instances.py moves the node to another zone), not failures a retry in place mends."""
    code = error_code(exc)
    return code in SERVER_ERRORS or (_status(exc) >= 500 and not code.startswith("Insufficient"))


def is_transient(exc: BaseException, *, retry_not_found: bool = False) -> bool:
    if isinstance(exc, TRANSPORT_ERRORS):
        return True
    code = error_code(exc)
    return (code in THROTTLING or code in BUSY or is_server_error(exc)
            or (retry_not_found and code.endswith(".NotFound")))


def cause(exc: BaseException) -> str:
    """What a retry is counted under: EC2's error code, else the exception's name."""
    return error_code(exc) or type(exc).__name__


def retry_counts() -> dict[str, int]:
    """Retries of this run so far, by cause."""
    with _retries_lock:
        return dict(_retries)


def reset_retry_counts() -> None:
    with _retries_lock:
        _retries.clear()


def retry_summary() -> str:
    """One line for the end of `lab up` / `lab down`, "" when nothing was retried.

    e.g. "EC2 calls retried 5 times: 3 RequestLimitExceeded, 2 ReadTimeoutError"."""
    counts = retry_counts()
    if not counts:
        return ""
    parts = ", ".join(f"{n} {c}" for c, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    total = sum(counts.values())
    return f"EC2 calls retried {total} time{'s' if total != 1 else ''}: {parts}"


def _count(state: RetryCallState) -> None:
    with _retries_lock:
        _retries[cause(state.outcome.exception())] += 1


def with_retry(fn: Callable[..., T], *args, retry_not_found: bool = False, **kwargs) -> T:
    """fn(*args, **kwargs), retried on transient EC2 failures; a CloudError when it cannot succeed.

    retry_not_found: the resource was just created, so NotFound means "not visible yet".
    """
    ambiguous: list[str] = []  # causes of earlier attempts whose answer was lost or failed on EC2's side

    def before_sleep(state: RetryCallState) -> None:
        _count(state)
        failure = state.outcome.exception()
        # A throttled request was not carried out; one whose answer was lost, or that failed on
        # EC2's side, may have been.
        if isinstance(failure, TRANSPORT_ERRORS) or (is_server_error(failure) and cause(failure) not in THROTTLING):
            ambiguous.append(cause(failure))

    retrying = Retrying(
        retry=retry_if_exception(lambda e: is_transient(e, retry_not_found=retry_not_found)),
        stop=stop_after_attempt(RETRY_ATTEMPTS) | stop_after_delay(RETRY_DEADLINE_SECONDS),
        wait=_backoff(), before_sleep=before_sleep, reraise=False,
    )
    started = time.monotonic()
    client, request = _client_and_request(fn, args, kwargs)
    try:
        return retrying(fn, *args, **kwargs)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise ec2_errors.gave_up(last, exc.last_attempt.attempt_number, time.monotonic() - started) from last
    except ClientError as exc:
        raise ec2_errors.refusal(exc, client, request, after=ambiguous) from exc
    except EndpointConnectionError as exc:
        raise ec2_errors.unreachable(exc) from exc
    except BotoCoreError as exc:
        explained = ec2_errors.credentials_problem(exc)
        if explained is None:
            raise  # a bug (a bad parameter, ...): the CLI's guard logs it
        raise explained from exc


def _client_and_request(fn, args: tuple, kwargs: dict) -> tuple[BaseClient | None, dict]:
    """The EC2 client and request parameters of a call, for the refusal's line (region, instance type).

    with_retry(ec2.run_instances, **request) or with_retry(helper, ec2, request): both are found."""
    candidates = (getattr(fn, "__self__", None), *args)
    client = next((c for c in candidates if isinstance(c, BaseClient)), None)
    request = kwargs or next((a for a in args if isinstance(a, dict)), {})
    return client, request


def call(fn: Callable[..., T], *, retry_not_found: bool = False, **kwargs) -> T:
    """fn(**kwargs) under the lab's retry policy: the usual way to send one EC2 request."""
    return with_retry(fn, retry_not_found=retry_not_found, **kwargs)
