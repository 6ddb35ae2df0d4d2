"""cloud_load.py through the front door: the catalog's public object-store URL is https, and the
load's connections speak TLS checked against the system's CAs (the controller trusts the lab's CA).
Before, it opened plain HTTP to port 80 of the door's host: refused, every client (CI, issue 23)."""

from __future__ import annotations

import ssl
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hostprog_http import FakeHTTP

from labcore.lab_ca import make_ca, server_cert

HOST_PROGRAMS = Path(__file__).resolve().parent.parent / "bootstrap" / "host"


@pytest.fixture
def cloud_load(monkeypatch):
    monkeypatch.syspath_prepend(str(HOST_PROGRAMS))
    for name in ("cloud_load", "cloud_ready"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import cloud_load

    return cloud_load


@pytest.fixture
def door(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate from a lab CA; (server, the CA's file)."""
    now = datetime.now(timezone.utc)
    ca = make_ca("t", now)
    pair = server_cert(ca, [], ["127.0.0.1"], now)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "cert.pem").write_bytes(pair.cert_pem)
    (tmp_path / "key.pem").write_bytes(pair.key_pem)
    server = FakeHTTP(lambda seen: (200, {}, b"ok " + seen.path.encode()), keep_alive=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    with server:
        yield server, tmp_path / "ca.pem"


def test_an_https_endpoint_is_asked_over_tls_trusting_the_systems_cas(cloud_load, door, monkeypatch):
    server, ca = door
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # as the lab's CA is in the controller's system bundle
    connections = cloud_load.Connections()
    try:
        status, _, body = connections.request("GET", f"https://127.0.0.1:{server.port}/v1/AUTH_x/c")
        again = connections.request("GET", f"https://127.0.0.1:{server.port}/v1/AUTH_x/c/o")
    finally:
        connections.close()
    assert (status, body) == (200, b"ok /v1/AUTH_x/c")
    assert again[0] == 200 and server.connections == 1  # kept open and reused, as over HTTP


def test_a_door_whose_ca_is_not_trusted_is_a_failure_not_a_plain_http_request(cloud_load, door, monkeypatch, tmp_path):
    server, _ = door
    other = make_ca("other", datetime.now(timezone.utc))
    (tmp_path / "other.pem").write_bytes(other.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "other.pem"))
    connections = cloud_load.Connections()
    with pytest.raises(cloud_load.Failed, match="SSL"):
        connections.request("GET", f"https://127.0.0.1:{server.port}/v1/AUTH_x")
    assert server.seen == []
