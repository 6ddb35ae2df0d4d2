"""The twin's EC2 API: a moto server on 127.0.0.1, and the image its instances boot.

moto keeps its state per region, in memory, so the sim image is registered lazily in
each region a lab asks for (`ensure_image`, idempotent) rather than in all of them.

Two actions need more than moto's state, and the server wraps moto's app for them (moto
still checks every request and answers every error):
- GetConsoleOutput answers with the instance body's own console (base64 in `Output`, as
  AWS does; no `Output` before the body has printed anything), where moto has a fixed text.
- RebootInstances leaves no trace in moto's state: the ids it accepted go to on_reboot.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import threading
from typing import Callable
from urllib.parse import parse_qsl

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

HOST = "127.0.0.1"
# The image the twin registers in each region; its bodies run Debian 12.
SIM_IMAGE_NAME = "lab-sim/debian-12-amd64"
# In the user agent of the daemon's own calls: requests without it are a client's, which may change the state.
RECONCILER_AGENT = "lab-sim-reconciler"
# Short timeouts and no retries: asking "are you there?" must answer fast either way.
_PROBE_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
_CLIENT_CONFIG = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


Console = Callable[[str], "str | None"]  # instance id -> its body's console; None without a body
_OUTPUT = re.compile(rb"<output>[^<]*</output>")


def _params(environ) -> dict[str, str]:
    """The request's query parameters (boto3 posts them as a form); the body is put back for moto."""
    if environ.get("REQUEST_METHOD") == "POST" and "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))


def _buffered(app, environ) -> tuple[str, list, bytes]:
    """moto's whole answer: status, headers, body."""
    answer: dict = {}
    chunks: list[bytes] = []

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        getattr(result, "close", lambda: None)()
    return answer["status"], answer["headers"], b"".join(chunks)


def with_console(body: bytes, text: str | None) -> bytes:
    """moto's GetConsoleOutputResponse with the body's console in <output> (none when empty)."""
    output = b"" if not text else b"<output>" + base64.b64encode(text.encode("utf-8", "replace")) + b"</output>"
    return _OUTPUT.sub(lambda _: output, body, count=1)


class TwinServer:
    """moto's server app on 127.0.0.1 in a thread (as moto's ThreadedMotoServer runs it), which
    calls on_request after every request that is not the reconciler's own: the daemon then
    reconciles at once instead of polling the API every second. console and on_reboot: see
    the module's docstring (without them, moto answers alone)."""

    def __init__(self, on_request: Callable[[], None] | None = None, console: Console | None = None,
                 on_reboot: Callable[[list[str]], None] | None = None):
        app = DomainDispatcherApplication(create_backend_app)
        notify = on_request or (lambda: None)

        def noticing(environ, start_response):
            params = _params(environ)
            action = params.get("Action")
            if action == "GetConsoleOutput" and console is not None:
                response = self._console(app, environ, start_response, console, params.get("InstanceId", ""))
            elif action == "RebootInstances" and on_reboot is not None:
                response = self._reboot(app, environ, start_response, on_reboot, params)
            else:
                response = app(environ, start_response)  # the state has changed by the time this returns
            if RECONCILER_AGENT not in environ.get("HTTP_USER_AGENT", ""):
                notify()
            return response

        self._server = make_server(HOST, 0, noticing, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @staticmethod
    def _console(app, environ, start_response, console: Console, instance_id: str):
        status, headers, body = _buffered(app, environ)
        if status.startswith("200"):
            body = with_console(body, console(instance_id))
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    @staticmethod
    def _reboot(app, environ, start_response, on_reboot, params: dict[str, str]):
        status, headers, body = _buffered(app, environ)
        if status.startswith("200"):
            on_reboot([v for k, v in sorted(params.items()) if re.fullmatch(r"InstanceId\.[0-9]+", k)])
        start_response(status, headers)
        return [body]

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def start_server(on_request: Callable[[], None] | None = None, console: Console | None = None,
                 on_reboot: Callable[[list[str]], None] | None = None) -> tuple[TwinServer, str]:
    """Start moto on a free port of 127.0.0.1; the server and its endpoint URL."""
    # One request per reconcile call would flood the log with werkzeug access lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = TwinServer(on_request, console, on_reboot)
    server.start()
    return server, server.endpoint


def ec2_client(endpoint: str, region: str, *, probe: bool = False, reconciler: bool = False):
    """A boto3 EC2 client for the twin (its credentials are not secret: moto accepts any)."""
    session = boto3.session.Session(aws_access_key_id="sim", aws_secret_access_key="sim", region_name=region)
    config = _PROBE_CONFIG if probe else _CLIENT_CONFIG
    if reconciler:
        config = config.merge(Config(user_agent_extra=RECONCILER_AGENT))
    return session.client("ec2", endpoint_url=endpoint, config=config)


def answers(endpoint: str, region: str = "us-east-1") -> bool:
    """Whether a moto server answers EC2 calls at endpoint."""
    try:
        ec2_client(endpoint, region, probe=True).describe_regions()
    except Exception as exc:  # any failure means "not answering"; the caller decides what to do
        logging.getLogger(__name__).debug("endpoint %s does not answer: %s", endpoint, exc)
        return False
    return True


def ensure_image(endpoint: str, region: str) -> str:
    """The sim image's id in region, registering it first if this region has none yet."""
    ec2 = ec2_client(endpoint, region)
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [SIM_IMAGE_NAME]}])["Images"]
    if found:
        return found[0]["ImageId"]
    answer = ec2.register_image(Name=SIM_IMAGE_NAME, Description="Debian 12 body of the local EC2 twin",
                                Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm")
    return answer["ImageId"]
