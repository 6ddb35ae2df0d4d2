"""What EC2's refusals mean for the person running the lab, in one line that says what to do.

A raw "VcpuLimitExceeded" or a 90-line NoCredentialsError traceback tells nobody what to
change; these lines name the quota to raise (and by how much), the IAM action that is
missing, how to set or renew credentials. Every line ends with the next step. The error
keeps EC2's code and operation (Ec2Error.code, .operation) for callers that handle one.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

from labcore.errors import CloudError

AGAIN = "then run the command again"
MESSAGE_CHARS = 300  # AWS's own message is quoted, cut to this
# The vCPU quota of the instance families EC2 calls "Standard".
STANDARD_QUOTA = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
STANDARD_QUOTA_CODE = "L-1216C47A"
_STANDARD_LETTERS = "acdhimrtz"
_OWN_QUOTA_FAMILIES = ("hpc", "inf", "dl", "trn", "mac", "u-")  # start with a standard letter, own quota
CREDENTIALS_REJECTED = frozenset({"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch",
                                  "IncompleteSignature", "MissingAuthenticationToken", "UnrecognizedClientException",
                                  "InvalidAccessKeyId"})
CREDENTIALS_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
HOW_TO_SET_CREDENTIALS = ("set AWS_PROFILE to a profile of ~/.aws/config, run `aws configure`, or export "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys)")

# Node -> instance type of the lab being created (lab.ec2.set_lab_instance_types).
LAB_INSTANCE_TYPES: dict[str, str] = {}
_vcpus_cache: dict[tuple[str, tuple[str, ...]], dict[str, int] | None] = {}
_vcpus_lock = threading.Lock()


class Ec2Error(CloudError):
    """EC2 refused a request, or retries ran out; exit 1, the message says what to do."""

    def __init__(self, message: str, code: str = "", operation: str = ""):
        super().__init__(message)
        self.code, self.operation = code, operation


def message_of(exc: BaseException) -> str:
    text = exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else str(exc)
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "..."


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _operation(exc: BaseException) -> str:
    return getattr(exc, "operation_name", None) or "the request"


def _region(client) -> str:
    return getattr(getattr(client, "meta", None), "region_name", None) or "this region"


# ---------------------------------------------------------------- refusals
def refusal(exc: ClientError, client=None, request: dict | None = None, *, after: list[str] = ()) -> Ec2Error:
    """The one line for a ClientError EC2 answered (and retrying would not change)."""
    code, operation = _code(exc), _operation(exc)
    head = f"EC2 refused {operation}: {code}"
    if code.endswith(".Duplicate") and after:
        text = (f"{head} after an earlier attempt ended in {after[-1]}: that attempt was carried out after all; "
                f"run the command again: it finds what exists by its tags")
    elif code in _EXPLAIN:
        text = f"{head}: {_EXPLAIN[code](exc, client, request or {})}"
    elif code in CREDENTIALS_REJECTED:
        text = (f"{head}: EC2 does not accept these credentials ({message_of(exc)}); check which identity you use "
                f"with `aws sts get-caller-identity` ({HOW_TO_SET_CREDENTIALS}), {AGAIN}")
    elif code in CREDENTIALS_EXPIRED:
        text = (f"{head}: your temporary AWS credentials have expired; renew them (`aws sso login`, or new keys in "
                f"AWS_SESSION_TOKEN), {AGAIN}")
    else:
        text = f"{head}: {message_of(exc)}; fix what AWS's message names, {AGAIN}"
    return Ec2Error(text, code, operation)


def _vcpu_limit(exc, client, request) -> str:
    types = dict(LAB_INSTANCE_TYPES) or {f"instance {i}": request.get("InstanceType", "?")
                                         for i in range(int(request.get("MaxCount", 1)))}
    who = "the lab" if LAB_INSTANCE_TYPES else "this launch"
    region = _region(client)
    limit = re.search(r"vCPU limit of (\d+)", message_of(exc))
    need = _vcpus_needed(client, types)
    counts = Counter(types.values())
    if need is None:
        what = f"{who} needs the vCPUs of {', '.join(f'{n} x {t}' for t, n in sorted(counts.items()))}"
    else:
        each = ", ".join(f"{n} x {t} of {need[1][t]}" for t, n in sorted(counts.items()))
        what = f"{who} needs {need[0]} vCPUs ({each})"
    held = f"the account's vCPU limit of {limit.group(1)}" if limit else "the account's vCPU quota"
    desired = (str(int(limit.group(1)) + need[0]) if limit and need else
               f"<your current quota + {need[0]}>" if need else "<a higher number>")
    if all(_standard(t) for t in counts):
        quota = (f"raise the quota \"{STANDARD_QUOTA}\" ({STANDARD_QUOTA_CODE}) in the Service Quotas console, "
                 f"or `aws service-quotas request-service-quota-increase --service-code ec2 --quota-code "
                 f"{STANDARD_QUOTA_CODE} --region {region} --desired-value {desired}`")
    else:
        quota = ("raise the \"Running On-Demand ... instances\" quota of these instance families in the Service "
                 "Quotas console (Amazon Elastic Compute Cloud)")
    return (f"{what}, and {held} in {region} does not leave room for them next to what already runs there; "
            f"{quota}, or stop instances you do not need; then run `lab up` again")


def _standard(instance_type: str) -> bool:
    family = instance_type.lower()
    return family[:1] in _STANDARD_LETTERS and not family.startswith(_OWN_QUOTA_FAMILIES)


def _vcpus_needed(client, types: dict[str, str]) -> tuple[int, dict[str, int]] | None:
    """(total vCPUs, vCPUs per type) from DescribeInstanceTypes; None when EC2 cannot say."""
    per_type = _vcpus_of(client, tuple(sorted(set(types.values()))))
    if per_type is None:
        return None
    return sum(per_type[t] for t in types.values()), per_type


def _vcpus_of(client, types: tuple[str, ...]) -> dict[str, int] | None:
    """Asked once per run (every launch of a lab over quota fails at once, in parallel)."""
    if client is None or not hasattr(client, "describe_instance_types"):
        return None
    key = (_region(client), types)
    with _vcpus_lock:
        if key not in _vcpus_cache:
            _vcpus_cache[key] = _describe_vcpus(client, types)
        return _vcpus_cache[key]


def _describe_vcpus(client, types: tuple[str, ...]) -> dict[str, int] | None:
    try:
        answer = client.describe_instance_types(InstanceTypes=list(types))
    except (ClientError, BotoCoreError):
        return None  # the quota line is still right, only without the number
    per_type = {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in answer.get("InstanceTypes", [])}
    return per_type if set(per_type) == set(types) else None


def _unauthorized(exc, client, request) -> str:
    message = message_of(exc)
    named = re.search(r"\b(ec2:[A-Za-z]+)\b", message)
    action = named.group(1) if named else f"ec2:{_operation(exc)}"
    encoded = re.search(r"Encoded authorization failure message:\s*(\S+)",
                        exc.response.get("Error", {}).get("Message", ""))
    hint = ""
    if encoded:
        saved = _save_encoded(_operation(exc), encoded.group(1))
        hint = (f"; `aws sts decode-authorization-message --encoded-message \"$(cat {saved})\"` tells which policy "
                f"denies it" if saved else "; `aws sts decode-authorization-message` on AWS's encoded message "
                                           "tells which policy denies it")
    return (f"your AWS identity may not call {action}; add it to the IAM policy of the user or role you use "
            f"(the README lists every action the lab needs){hint}; {AGAIN}")


def _save_encoded(operation: str, encoded: str) -> str | None:
    """The encoded reason is too long for a line: kept in a 0600 file for `aws sts decode-authorization-message`."""
    from labcore.paths import state_root, write_private

    path = state_root() / f"authorization-failure-{operation}.txt"
    try:
        write_private(path, encoded + "\n")
    except OSError:
        return None
    return str(path)


def _pending_verification(exc, client, request) -> str:
    return (f"AWS is still verifying your account for {_region(client)} (normally minutes, at most 4 hours; AWS "
            f"sends an e-mail when it is done); wait for it, {AGAIN}")


def _opt_in_required(exc, client, request) -> str:
    return (f"your account is not subscribed to what this needs ({message_of(exc)}); enable the region "
            f"{_region(client)} in the AWS console (Account, AWS Regions), or subscribe to the image in AWS "
            f"Marketplace, {AGAIN}")


def _request_expired(exc, client, request) -> str:
    return (f"the request reached EC2 too late for its signature: this machine's clock is off or its temporary "
            f"credentials have expired; sync the clock (`timedatectl`) or renew them (`aws sso login`), {AGAIN}")


def _blocked(exc, client, request) -> str:
    return f"AWS has blocked this account ({message_of(exc)}); contact AWS Support, {AGAIN}"


def _no_capacity(exc, client, request) -> str:
    return (f"AWS has no capacity for {request.get('InstanceType', 'this instance type')} there right now "
            f"({message_of(exc)}); run `lab up` again in a few minutes, or choose another instance type or subnet")


def _instance_limit(exc, client, request) -> str:
    return (f"the account may run no more instances in {_region(client)} ({message_of(exc)}); raise the limit in "
            f"the Service Quotas console, or stop instances you do not need; then run `lab up` again")


def _volume_limit(exc, client, request) -> str:
    return (f"the account's EBS storage quota in {_region(client)} is used up ({message_of(exc)}); raise it in the "
            f"Service Quotas console (Amazon Elastic Block Store), or delete volumes you do not need; then run "
            f"`lab up` again")


_EXPLAIN: dict[str, Callable[[ClientError, object, dict], str]] = {
    "VcpuLimitExceeded": _vcpu_limit, "UnauthorizedOperation": _unauthorized,
    "PendingVerification": _pending_verification, "OptInRequired": _opt_in_required,
    "RequestExpired": _request_expired, "Blocked": _blocked, "InsufficientInstanceCapacity": _no_capacity,
    "InstanceLimitExceeded": _instance_limit, "VolumeLimitExceeded": _volume_limit,
}


# ---------------------------------------------------------------- retries that ran out, no connection
def gave_up(last: BaseException, attempts: int, seconds: float) -> Ec2Error:
    tried = f"after {attempts} attempts over {seconds:.0f} s"
    if isinstance(last, ClientError):
        return Ec2Error(f"EC2 kept answering {_code(last)} for {_operation(last)} {tried}; wait a few minutes, "
                        f"{AGAIN} (it goes on from where it stopped) ({message_of(last)})",
                        _code(last), _operation(last))
    where = getattr(last, "kwargs", {}).get("endpoint_url", "EC2")
    return Ec2Error(f"EC2 did not answer ({type(last).__name__} at {where}) {tried}; check this machine's network "
                    f"connection, {AGAIN} (it goes on from where it stopped)", type(last).__name__)


def unreachable(exc: BaseException) -> Ec2Error:
    return Ec2Error(f"cannot reach EC2: {exc}; check the network, the region and AWS_ENDPOINT_URL if it is set, "
                    f"{AGAIN}", type(exc).__name__)


# ---------------------------------------------------------------- credentials
def credentials_problem(exc: BaseException) -> CloudError | None:
    """The one line for botocore failing to find or load credentials; None for any other botocore error."""
    if isinstance(exc, NoCredentialsError):
        return CloudError(f"no AWS credentials found: {HOW_TO_SET_CREDENTIALS}; {AGAIN}")
    if isinstance(exc, PartialCredentialsError):
        return CloudError(f"the AWS credentials are incomplete ({exc}): {HOW_TO_SET_CREDENTIALS}; {AGAIN}")
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile", "")
        return CloudError(f"the AWS profile {profile!r} (AWS_PROFILE) is not in ~/.aws/config: run "
                          f"`aws configure --profile {profile}` or set AWS_PROFILE to a profile that exists; {AGAIN}")
    if isinstance(exc, (TokenRetrievalError, SSOError)):
        return CloudError(f"the AWS SSO session has expired or was never started ({exc}): run `aws sso login` "
                          f"(for the profile in AWS_PROFILE); {AGAIN}")
    if isinstance(exc, CredentialRetrievalError):
        return CloudError(f"the AWS credentials could not be loaded ({exc}): check the credential_process or role "
                          f"of your profile in ~/.aws/config; {AGAIN}")
    return None


def check_credentials(session_factory: Callable[[], object]) -> None:
    """Fail with one line before any EC2 call when boto3 would find no usable credentials.

    session_factory builds the boto3 session (building it already fails for an AWS_PROFILE
    that does not exist). No EC2 call is made: boto3's credential chain is resolved, which
    on an EC2 host includes asking its instance metadata."""
    try:
        credentials = session_factory().get_credentials()
    except BotoCoreError as exc:
        explained = credentials_problem(exc)
        if explained is None:
            raise
        raise explained from exc
    if credentials is None:
        raise credentials_problem(NoCredentialsError())
