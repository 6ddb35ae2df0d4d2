"""Calling EC2: which errors are worth a retry, how long to keep trying, and the lab's tags.

Only errors known to be transient are retried (throttling, eventual consistency right
after a create, a security group still held by terminating instances, a resource in a
passing state); anything else is a real answer and fails at once with AWS's message.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from botocore.exceptions import ClientError, EndpointConnectionError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from labcore.errors import CloudError

T = TypeVar("T")

THROTTLING = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"})
BUSY = frozenset({"DependencyViolation", "IncorrectState", "IncorrectInstanceState", "VolumeInUse"})
RETRY_ATTEMPTS = 8
RETRY_WAIT_SECONDS = 0.5  # first backoff; doubles, with full jitter
RETRY_MAX_WAIT_SECONDS = 20.0
# None: jittered exponential backoff from the two settings above. Tests and the benchmark
# shrink it with set_backoff(wait_none()) so a retried call costs no wall time there.
WAIT: wait_base | None = None


def set_backoff(wait: wait_base | None) -> None:
    """Replace the backoff between retries (None restores the default jittered exponential)."""
    global WAIT
    WAIT = wait


def _backoff() -> wait_base:
    return WAIT if WAIT is not None else wait_random_exponential(multiplier=RETRY_WAIT_SECONDS,
                                                                 max=RETRY_MAX_WAIT_SECONDS)


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_transient(exc: BaseException, *, retry_not_found: bool = False) -> bool:
    code = error_code(exc)
    return code in THROTTLING or code in BUSY or (retry_not_found and code.endswith(".NotFound"))


def with_retry(fn: Callable[..., T], *args, retry_not_found: bool = False, **kwargs) -> T:
    """fn(*args, **kwargs), retried on transient EC2 errors; a CloudError when it cannot succeed.

    retry_not_found: the resource was just created, so NotFound means "not visible yet".
    """
    retrying = Retrying(
        retry=retry_if_exception(lambda e: is_transient(e, retry_not_found=retry_not_found)),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=_backoff(),
        reraise=False,
    )
    try:
        return retrying(fn, *args, **kwargs)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise CloudError(f"EC2 kept answering {error_code(last)} for {_operation(last)} after "
                         f"{RETRY_ATTEMPTS} attempts; try again later ({_message(last)})") from last
    except ClientError as exc:
        raise CloudError(f"EC2 refused {_operation(exc)}: {error_code(exc)}: {_message(exc)}") from exc
    except EndpointConnectionError as exc:
        raise CloudError(f"cannot reach EC2: {exc}") from exc


def call(fn: Callable[..., T], *, retry_not_found: bool = False, **kwargs) -> T:
    """fn(**kwargs) under the lab's retry policy: the usual way to send one EC2 request."""
    return with_retry(fn, retry_not_found=retry_not_found, **kwargs)


def _operation(exc: BaseException) -> str:
    return getattr(exc, "operation_name", None) or "the request"


def _message(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Message", str(exc)) if isinstance(exc, ClientError) else str(exc)
