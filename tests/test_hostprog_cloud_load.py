"""bootstrap/host/cloud_load.py on every interpreter: a bounded load of tokens and object PUT/GETs
against a fake Keystone + Swift on 127.0.0.1, its connections reused as urllib3 reuses them (issue 22)."""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest
from hostprog_http import FakeCloud
from interpreters import on, run
from test_hostprog_cloud_ready import openrc


def _nowhere() -> FakeCloud:
    cloud = FakeCloud()
    cloud.url = "http://127.0.0.1:9"
    return cloud


def load(version, rc_path, seconds="1", clients="2"):
    result = run(version, "cloud_load.py", str(rc_path), seconds, clients, timeout=90)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def served(tmp_path, **options):
    cloud = FakeCloud()
    server = cloud.serve(**options)
    rc = tmp_path / "demo-openrc"
    rc.write_text(openrc(cloud))
    return cloud, server, rc


@on()
def test_a_cloud_that_serves_gives_requests_latencies_and_no_error(version, tmp_path):
    cloud, server, rc = served(tmp_path, keep_alive=True)
    with server:
        result, found = load(version, rc)
    assert result.returncode == 0, result.stderr
    assert found["errors"] == 0 and found["clients"] == 2 and found["requests"] >= 6, found
    for op in ("token", "put", "get"):
        assert found["ops"][op]["count"] >= 1 and found["ops"][op]["p99_ms"] >= found["ops"][op]["p50_ms"]
    assert cloud.containers == {} and found["left_behind"] == []  # every object and container deleted
    assert server.connections < len(server.seen) / 4  # connections kept and reused, as real clients do
    assert cloud.password not in result.stdout + result.stderr and cloud.token not in result.stdout


@on()
def test_a_server_that_drops_kept_connections_without_saying_so_is_caught(version, tmp_path):
    """HTTP/1.1 with no `Connection: close`, then the socket closed: a client that reuses the
    connection at once (as urllib3 does when it has not yet seen the close) fails its next request.
    That is the error Tempest met with two workers; the load counts it, by kind, and exits 1."""
    cloud, server, rc = served(tmp_path, keep_alive=True, silent_close=True)
    with server:
        result, found = load(version, rc)
    assert result.returncode == 1 and found["errors"] > 0, found
    assert {kind.split(": ")[1].split(" ")[0] for kind in found["error_kinds"]} <= {
        "RemoteDisconnected", "BadStatusLine", "BrokenPipeError", "ConnectionResetError", "error"}, found


@on()
def test_a_server_that_says_connection_close_costs_no_error(version, tmp_path):
    cloud = FakeCloud()
    answer = cloud.answer
    cloud.answer = lambda seen: (lambda s, h, b: (s, {**h, "Connection": "close"}, b))(*answer(seen))
    server = cloud.serve(keep_alive=True, silent_close=True)
    rc = tmp_path / "demo-openrc"
    rc.write_text(openrc(cloud))
    with server:
        result, found = load(version, rc)
    assert (result.returncode, found["errors"]) == (0, 0), found
    assert server.connections == len(server.seen)


class Resetting:
    """A server that reads a request, then resets the connection (what Tempest met: ECONNRESET)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


@on()
def test_a_server_that_resets_connections_is_counted_by_kind_and_fails_the_run(version, tmp_path):
    server = Resetting()
    rc = tmp_path / "demo-openrc"
    rc.write_text(openrc(_nowhere(), OS_AUTH_URL=f"http://127.0.0.1:{server.port}/v3"))
    result, found = load(version, rc, seconds="1", clients="1")
    server.listener.close()
    assert result.returncode == 1 and found["errors"] >= 1
    assert all(kind.startswith("token: ") for kind in found["error_kinds"]), found["error_kinds"]


@pytest.mark.parametrize("args, words", [
    (("9", "2"), "usage"),
    (("{rc}", "0", "2"), "SECONDS: expected 1 to 600"),
    (("{rc}", "601", "2"), "SECONDS: expected 1 to 600"),
    (("{rc}", "5", "33"), "CLIENTS: expected 1 to 32"),
    (("{rc}", "5", "x"), "CLIENTS: expected 1 to 32"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path, args, words):
    rc = tmp_path / "demo-openrc"
    rc.write_text(openrc(_nowhere()))
    result = run("3.11", "cloud_load.py", *(a.format(rc=rc) for a in args))
    assert result.returncode == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1
