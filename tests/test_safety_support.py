"""Shared by the test_safety_* files (no tests here): faults injected into the lab's own EC2
clients through botocore event hooks, and a moto server on 127.0.0.1 for the CLI.

The lab builds its clients from Target.ec2_client; Faults wraps that method, so every
client a command makes carries the hooks, while the test's own boto3 client does not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lab import ec2 as lab_ec2
from lab.target import Target

REGION = "ap-northeast-2"
ROOT = Path(__file__).resolve().parent.parent


class Faults:
    """Per EC2 operation, a queue of what its next calls do instead of reaching EC2.

    error(op, code): EC2 answers that error (status 400, or the one given);
    raise_(op, exc_factory): the transport fails (raised where botocore sends the request);
    answer(op, fn): fn(params) -> the parsed answer EC2 gives (an error if it holds "Error").
    A call with nothing queued goes to moto as usual. calls counts every call per operation.
    """

    def __init__(self, monkeypatch):
        self.queued: dict[str, list[Callable]] = {}
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        original = Target.ec2_client

        def hooked(target, region):
            client = original(target, region)
            client.meta.events.register("before-call.ec2", self._before_call)
            client.meta.events.register("before-send.ec2", self._before_send)
            return client

        monkeypatch.setattr(Target, "ec2_client", hooked)
        monkeypatch.setattr(lab_ec2, "WAIT", _no_wait())
        lab_ec2.reset_retry_counts()

    def _push(self, operation: str, action: Callable, times: int) -> Faults:
        self.queued.setdefault(operation, []).extend([action] * times)
        return self

    def error(self, operation: str, code: str, times: int = 1, message: str | None = None,
              status: int = 400) -> Faults:
        def answer(params):
            error = {"Error": {"Code": code, "Message": message or f"injected {code}"},
                     "ResponseMetadata": {"HTTPStatusCode": status}}
            return SimpleNamespace(status_code=status, headers={}), error

        return self._push(operation, ("call", answer), times)

    def answer(self, operation: str, fn: Callable[[dict], dict], times: int = 1) -> Faults:
        """fn(params) -> the parsed answer; one holding "Error" is an error answer (status 400)."""
        def answer(params):
            parsed = fn(params)
            status = 400 if "Error" in parsed else 200
            return SimpleNamespace(status_code=status, headers={}), {**parsed, "ResponseMetadata": {
                "HTTPStatusCode": status}}

        return self._push(operation, ("call", answer), times)

    def raise_(self, operation: str, exc_factory: Callable[[], BaseException], times: int = 1) -> Faults:
        return self._push(operation, ("send", exc_factory), times)

    def _next(self, operation: str, stage: str):
        with self.lock:
            queue = self.queued.get(operation) or []
            if queue and queue[0][0] == stage:
                return queue.pop(0)[1]
        return None

    def _before_call(self, model, params, **_):
        with self.lock:
            self.calls[model.name] = self.calls.get(model.name, 0) + 1
        action = self._next(model.name, "call")
        return action(params) if action else None

    def _before_send(self, request, **_):
        operation = _operation_of(request)
        action = self._next(operation, "send") if operation else None
        if action:
            raise action()


def _operation_of(request) -> str | None:
    body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
    for part in body.split("&"):
        if part.startswith("Action="):
            return part.split("=", 1)[1]
    return None


def _no_wait():
    from tenacity import wait_none

    return wait_none()


@pytest.fixture
def endpoint(monkeypatch):
    """A moto server on 127.0.0.1, reached only through AWS_ENDPOINT_URL (as the CLI reaches AWS)."""
    from lab import instances, teardown, volumes

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    for module, name in ((instances, "POLL_SECONDS"), (volumes, "POLL_SECONDS"),
                         (teardown, "TERMINATE_POLL_SECONDS"), (teardown, "GONE_POLL_SECONDS"),
                         (teardown, "STOP_POLL_SECONDS")):
        monkeypatch.setattr(module, name, 0.05)
    yield url
    server.stop()


_BOTOCORE = None


def share_botocore_session(monkeypatch) -> None:
    """Every boto3 session built from here on shares one botocore session: the EC2 model is
    read once, not per client (a second each). Not for tests about finding credentials (it
    caches them)."""
    import functools

    import botocore.session

    global _BOTOCORE
    if _BOTOCORE is None:
        _BOTOCORE = botocore.session.get_session()
    monkeypatch.setattr(boto3.session, "Session", functools.partial(boto3.session.Session,
                                                                    botocore_session=_BOTOCORE))


def server_client(url: str):
    return boto3.client("ec2", region_name=REGION, endpoint_url=url)


def cli_config(tmp_path: Path, url: str, lab: str) -> str:
    """configs/lab.yaml as lab `lab`, SSH from a documentation address, on moto's Ubuntu image."""
    base = server_client(url).describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    text = (ROOT / "configs" / "lab.yaml").read_text().replace("allow_from: [auto]", "allow_from: [203.0.113.9/32]")
    text = text.replace("name: rocky-lab", f"name: {lab}")
    path = tmp_path / f"{lab}.yaml"
    path.write_text(text + f"\nami: {base}\n")
    return str(path)


def lab_volumes(ec2, lab: str) -> list[dict]:
    return ec2.describe_volumes(Filters=[{"Name": "tag:lab:name", "Values": [lab]}])["Volumes"]


def lab_instances(ec2, lab: str) -> list[dict]:
    return [i for r in ec2.describe_instances(Filters=[{"Name": "tag:lab:name", "Values": [lab]}])["Reservations"]
            for i in r["Instances"] if i["State"]["Name"] != "terminated"]


def node_instance(ec2, lab: str, node: str) -> dict:
    return next(i for i in lab_instances(ec2, lab) if {"Key": "lab:node", "Value": node} in i["Tags"])
