"""The install floor's lone containers get answers from a metadata service, as a lab's hosts do.

Without one, their cloud-init waited two minutes for 169.254.169.254 and the packages'
service starts (ordered after network-online.target) waited with it: the floor measured
that wait (153 s for the TempAuth lab's packages, whose whole install took 85 s).
"""

from __future__ import annotations

import http.client

import pytest
from bench_modules import load
from hostprog_http import closed_port

from twin.imds_server import MetadataService
from twin.model import InstanceBody


@pytest.fixture
def floor(monkeypatch):
    return load("sim_install_floor", monkeypatch)


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


def test_a_floor_body_reads_its_own_instance_id_and_has_no_user_data(floor):
    body = InstanceBody("i-0f100rbench0009", "floor", "floor", "127.0.0.1", floor.SUBNET, "debian", "")
    service = MetadataService(floor._floor_metadata([body]), port=closed_port())
    service.serve_on({"127.0.0.1"})
    try:
        port = service.port
        assert _get(port, "/latest/meta-data/instance-id") == (200, "i-0f100rbench0009")
        assert _get(port, "/latest/meta-data/local-ipv4") == (200, "127.0.0.1")
        assert _get(port, "/latest/user-data")[0] == 404
    finally:
        service.stop()


def test_an_address_of_no_floor_body_gets_no_instance(floor):
    body = InstanceBody("i-0f100rbench0009", "floor", "floor", "172.31.15.250", floor.SUBNET, "debian", "")
    assert floor._floor_metadata([body])("172.31.15.251") is None
    assert floor._floor_metadata([body])("172.31.15.250").instance_id == "i-0f100rbench0009"
