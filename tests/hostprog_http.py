"""Small HTTP servers on 127.0.0.1 for the host programs' tests: a plain one answering from a
function, and a fake Keystone + Swift that warms up as a freshly installed cloud does."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes


class FakeHTTP:
    """answer(Seen) -> (status, headers, body); every request is kept in .seen.

    keep_alive: HTTP/1.1, connections kept open between requests (as Keystone and the proxy do);
    silent_close too: each connection closed after its answer without saying so (no
    `Connection: close`), as a server that drops idle connections does. .connections counts them.
    """

    def __init__(self, answer, keep_alive: bool = False, silent_close: bool = False):
        self.answer = answer
        self.seen: list[Seen] = []
        self.connections = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self):
                owner.connections += 1
                super().setup()

            def handle_one(self):
                size = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(size))
                owner.seen.append(seen)
                status, headers, body = owner.answer(seen)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if silent_close:
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FakeCloud:
    """Keystone (/v3/auth/tokens), TempAuth (/auth/v1.0) and a Swift proxy (/healthcheck, /v1/AUTH_demo/...)
    in one server.

    `late` says how many first requests of a kind answer as a cloud that is still starting:
    "healthcheck" and "container PUT" get 503, "object GET" gets 404 (seen after a real install).
    """
    user: str = "myuser"
    password: str = "demo-secret-pass"
    project: str = "myproject"
    token: str = "gAAAAA-the-token-itself"
    late: dict = field(default_factory=dict)
    catalog: bool = True
    containers: dict = field(default_factory=dict)  # name -> {object name: bytes}

    def answer(self, seen: Seen):
        if seen.path == "/healthcheck":
            return self._late("healthcheck", 503) or (200, {}, b"OK")
        if seen.path == "/v3/auth/tokens" and seen.method == "POST":
            return self._token(json.loads(seen.body))
        if seen.path == "/auth/v1.0" and seen.method == "GET":  # TempAuth: account demo, user demo
            if (seen.headers.get("X-Auth-User"), seen.headers.get("X-Auth-Key")) != ("demo:demo", self.password):
                return 401, {}, b"Unauthorized"
            return 200, {"X-Auth-Token": self.token, "X-Storage-Url": f"{self.url}/v1/AUTH_demo"}, b""
        if not seen.path.startswith("/v1/AUTH_demo/"):
            return 404, {}, b"Not Found"
        if seen.headers.get("X-Auth-Token") != self.token:
            return 401, {}, b"Unauthorized"
        return self._swift(seen.method, seen.path[len("/v1/AUTH_demo/"):].split("/", 1), seen.body)

    def _late(self, kind, status):
        if self.late.get(kind, 0) > 0:
            self.late[kind] -= 1
            return status, {}, b"not yet"
        return None

    def _token(self, body):
        auth = body["auth"]
        user = auth["identity"]["password"]["user"]
        if (user["name"], user["domain"]["name"], user["password"]) != (self.user, "Default", self.password):
            return 401, {}, b'{"error": {"code": 401}}'
        if auth["scope"]["project"] != {"name": self.project, "domain": {"name": "Default"}}:
            return 401, {}, b'{"error": {"code": 401}}'
        endpoints = [{"interface": "admin", "region": "RegionOne", "url": "http://127.0.0.1:9/v1"},
                     {"interface": "public", "region": "RegionOne", "url": f"{self.url}/v1/AUTH_demo"}]
        catalog = [{"type": "identity", "endpoints": [{"interface": "public", "url": f"{self.url}/v3"}]}]
        if self.catalog:
            catalog.append({"type": "object-store", "endpoints": endpoints})
        answer = json.dumps({"token": {"catalog": catalog}}).encode()
        return 201, {"X-Subject-Token": self.token, "Content-Type": "application/json"}, answer

    def _swift(self, method, names, body):
        container = names[0]
        if len(names) == 1:
            if method == "PUT":
                late = self._late("container PUT", 503)
                if late:
                    return late
                self.containers.setdefault(container, {})
                return 201, {}, b""
            if method == "DELETE" and container in self.containers:
                if self.containers[container]:
                    return 409, {}, b"Conflict"
                del self.containers[container]
                return 204, {}, b""
            return 404, {}, b""
        objects = self.containers.get(container)
        if objects is None:
            return 404, {}, b""
        if method == "PUT":
            objects[names[1]] = body
            return 201, {}, b""
        if method == "GET" and names[1] in objects:
            return self._late("object GET", 404) or (200, {}, objects[names[1]])
        if method == "DELETE" and names[1] in objects:
            del objects[names[1]]
            return 204, {}, b""
        return 404, {}, b""

    def serve(self, **options) -> FakeHTTP:
        server = FakeHTTP(self.answer, **options)
        self.url = server.url
        return server
