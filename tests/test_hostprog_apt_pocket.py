"""bootstrap/host/apt_pocket.py on every interpreter, against an archive on 127.0.0.1 (never the
real Ubuntu Cloud Archive: this machine talks to loopback only)."""

from __future__ import annotations

import pytest
from hostprog_http import FakeHTTP, closed_port
from interpreters import on, run

RELEASE = "/ubuntu/dists/bionic-updates/rocky/Release"
DIRECT = {"http_proxy": "", "HTTP_PROXY": "", "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}


def archive(status: int):
    return lambda seen: (status, {"Content-Type": "text/plain"}, b"Origin: Canonical\n" if status == 200 else b"")


def ask(version: str, url: str, seconds: str = "5"):
    return run(version, "apt_pocket.py", url, seconds, "debian-12", env=DIRECT)


@on()
def test_a_pocket_the_archive_serves_passes_quietly(version):
    with FakeHTTP(archive(200)) as server:
        result = ask(version, server.url + RELEASE)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert [(s.method, s.path) for s in server.seen] == [("GET", RELEASE)]


@on()
@pytest.mark.parametrize("status", [404, 410])
def test_a_pocket_that_is_gone_stops_in_one_line_naming_the_url_and_the_fallback(version, status):
    with FakeHTTP(archive(status)) as server:
        url = server.url + RELEASE
        result = ask(version, url)
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"package archive: {url} answered HTTP {status} ")
    assert "the archive no longer serves this release" in line
    assert "The fallback is `openstack: {os: debian-12}` in the lab's config" in line


@on()
def test_an_archive_the_host_cannot_reach_says_so_in_one_line(version):
    url = f"http://127.0.0.1:{closed_port()}{RELEASE}"
    result = ask(version, url)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"package archive: {url} answered not reachable: ")
    assert "could not ask the archive" in line and "openstack: {os: debian-12}" in line


@on()
def test_a_server_error_is_not_taken_for_a_pocket(version):
    with FakeHTTP(archive(503)) as server:
        result = ask(version, server.url + RELEASE)
    assert result.returncode == 1 and "answered HTTP 503" in result.stderr
    assert "could not ask the archive" in result.stderr


@on()
@pytest.mark.parametrize("args", [(), ("http://x/Release",), ("http://x/Release", "0", "debian-12"),
                                  ("http://x/Release", "soon", "debian-12")])
def test_apt_pocket_needs_a_url_whole_seconds_and_the_fallback(version, args):
    result = run(version, "apt_pocket.py", *args)
    assert result.returncode == 2
    assert result.stderr == "usage: apt_pocket.py URL SECONDS FALLBACK_OS (SECONDS a whole number from 1)\n"
