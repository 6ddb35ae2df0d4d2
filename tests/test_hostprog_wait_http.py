"""bootstrap/host/wait_http.py on every interpreter, against servers on 127.0.0.1 that the tests start."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest
from hostprog_http import FakeHTTP, closed_port
from interpreters import on, run


def answers(*statuses):
    """An answer function giving these statuses in turn, then the last one for ever."""
    left = list(statuses)

    def answer(seen):
        status = left.pop(0) if len(left) > 1 else left[0]
        headers = {"Location": f"http://127.0.0.1:{closed_port()}/"} if 300 <= status < 400 else {}
        return status, headers, b"body"
    return answer


@on()
def test_wait_http_returns_once_a_starting_server_answers(version):
    with FakeHTTP(answers(503, 300)) as server:
        started = time.monotonic()
        result = run(version, "wait_http.py", f"{server.url}/v3", "20")
        took = time.monotonic() - started
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert [s.path for s in server.seen] == ["/v3"] * 2
    assert 0.9 < took < 8  # a second between tries, and no longer once it answered


@on()
@pytest.mark.parametrize("status", [200, 301, 401, 404])
def test_wait_http_takes_any_status_below_500_as_an_answer(version, status):
    with FakeHTTP(answers(status)) as server:  # 301 points at a closed port: not followed
        result = run(version, "wait_http.py", server.url + "/", "5")
    assert result.returncode == 0, result.stderr
    assert len(server.seen) == 1


@on()
def test_wait_http_gives_up_on_a_closed_port_after_the_bound(version):
    url = f"http://127.0.0.1:{closed_port()}/v3"
    started = time.monotonic()
    result = run(version, "wait_http.py", url, "1")
    took = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr == f"{url} does not answer after 1 s: Connection refused\n"
    assert 0.9 < took < 5


@on()
def test_wait_http_with_no_seconds_asks_once(version):
    url = f"http://127.0.0.1:{closed_port()}/v3"
    refused = run(version, "wait_http.py", url, "0")
    assert (refused.returncode, refused.stderr) == (1, f"{url} does not answer after 0 s: Connection refused\n")
    with FakeHTTP(answers(503, 300)) as server:
        late = run(version, "wait_http.py", server.url + "/v3", "0")
    assert late.returncode == 1 and len(server.seen) == 1  # the 503, and no second try a second later


@on()
def test_wait_http_names_the_last_5xx(version):
    with FakeHTTP(answers(503)) as server:
        result = run(version, "wait_http.py", server.url + "/v3", "1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"{server.url}/v3 does not answer after 1 s: HTTP 503")
    assert 2 <= len(server.seen) <= 3


@on()
def test_wait_http_counts_a_silent_server_as_not_answering(version):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never says a word
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        started = time.monotonic()
        result = run(version, "wait_http.py", url, "1")
        took = time.monotonic() - started
    finally:
        listener.close()
    assert result.returncode == 1
    assert result.stderr == f"{url} does not answer after 1 s: timed out\n"
    assert took < 5


@on()
def test_wait_http_ignores_proxy_settings(version):
    proxy = f"http://127.0.0.1:{closed_port()}"
    with FakeHTTP(answers(200)) as server:
        result = run(version, "wait_http.py", server.url, "3", env={"http_proxy": proxy, "HTTP_PROXY": proxy})
    assert result.returncode == 0, result.stderr


@on()
@pytest.mark.parametrize("args", [[], ["http://controller:5000/v3"], ["http://controller:5000/v3", "soon"],
                                  ["controller:5000", "5"], ["http://controller:5000/v3", "-1"]])
def test_wait_http_refuses_bad_arguments(version, args):
    result = run(version, "wait_http.py", *args)
    assert result.returncode == 2
    assert result.stderr == "usage: wait_http.py URL SECONDS (e.g. http://controller:5000/v3 60)\n"


def test_wait_http_server_helper_answers_in_order():
    """The helper itself: without it the tests above would prove nothing."""
    got = []
    with FakeHTTP(answers(503, 200)) as server:
        for _ in range(2):
            try:
                got.append(urllib.request.urlopen(server.url, timeout=3).status)
            except urllib.error.HTTPError as error:
                got.append(error.code)
    assert got == [503, 200]
