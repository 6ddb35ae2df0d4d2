"""bootstrap/host/cloud_ready.py on every interpreter, against a fake Keystone + Swift on 127.0.0.1
that answers as a freshly installed cloud does (503 and 404 first, then 200)."""

from __future__ import annotations

import json

import pytest
from hostprog_http import FakeCloud, FakeHTTP, closed_port
from interpreters import on, run
from plan_fixtures import inventory

from bootstrap.components.tempauth import AUTH_URL, swiftrc
from labcore.secrets import Secrets


def openrc(cloud: FakeCloud, **changes) -> str:
    """The guide's demo-openrc as bootstrap/components/keystone.py writes it (values shell-quoted)."""
    values = {"OS_PROJECT_DOMAIN_NAME": "Default", "OS_USER_DOMAIN_NAME": "Default",
              "OS_PROJECT_NAME": cloud.project, "OS_USERNAME": cloud.user, "OS_PASSWORD": f"'{cloud.password}'",
              "OS_AUTH_URL": f"{cloud.url}/v3", "OS_IDENTITY_API_VERSION": "3", "OS_IMAGE_API_VERSION": "2"}
    values.update(changes)
    return "".join(f"export {key}={value}\n" for key, value in values.items() if value is not None)


@pytest.fixture
def cloud():
    fake = FakeCloud()
    with fake.serve() as server:
        fake.server = server
        with FakeHTTP(lambda seen: (200, {}, b"OK") if seen.path == "/healthcheck" else (404, {}, b"")) as storage:
            fake.storage = storage
            yield fake


def ready(version, cloud, tmp_path, storage=None, rc_text=None, **openrc_changes):
    """One round of cloud_ready.py with the demo-openrc (or rc_text: a TempAuth lab's swiftrc)."""
    rc = tmp_path / ("demo-swiftrc" if rc_text else "demo-openrc")
    rc.write_text(rc_text or openrc(cloud, **openrc_changes))
    servers = [f"127.0.0.1:{cloud.storage.port}"] if storage is None else storage
    result = run(version, "cloud_ready.py", str(rc), cloud.url, json.dumps(servers))
    assert cloud.password not in result.stdout + result.stderr
    assert cloud.token not in result.stdout + result.stderr
    return result


@on()
def test_cloud_ready_passes_on_a_cloud_that_serves(version, cloud, tmp_path):
    result = ready(version, cloud, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["ok proxy healthcheck",
                                          f"ok storage 127.0.0.1:{cloud.storage.port} healthcheck",
                                          "ok token for myuser", "ok swift round trip"]
    methods = [(s.method, s.path.count("/")) for s in cloud.server.seen if s.path.startswith("/v1/")]
    assert methods == [("PUT", 3), ("PUT", 4), ("GET", 4), ("DELETE", 4), ("DELETE", 3)]
    assert cloud.containers == {}  # nothing left behind
    assert not any("127.0.0.1:9" in s.path for s in cloud.server.seen)


@on()
def test_cloud_ready_polled_until_a_warming_cloud_serves(version, cloud, tmp_path):
    cloud.late.update({"healthcheck": 1, "container PUT": 1, "object GET": 1})
    rounds = [ready(version, cloud, tmp_path) for _ in range(3)]
    assert [r.returncode for r in rounds] == [1, 1, 0]
    first, second = rounds[0].stdout.splitlines(), rounds[1].stdout.splitlines()
    assert "late proxy healthcheck: healthcheck answered HTTP 503" in first
    assert "late swift round trip: container PUT answered HTTP 503" in first
    assert "ok proxy healthcheck" in second
    assert "late swift round trip: object GET answered HTTP 404 (removed again)" in second
    assert rounds[2].stdout.splitlines()[-1] == "ok swift round trip"
    assert cloud.containers == {}


@on()
def test_cloud_ready_names_a_storage_server_that_does_not_answer(version, cloud, tmp_path):
    down = f"127.0.0.1:{closed_port()}"
    result = ready(version, cloud, tmp_path, storage=[f"127.0.0.1:{cloud.storage.port}", down])
    assert result.returncode == 1
    assert f"late storage {down} healthcheck: Connection refused" in result.stdout.splitlines()
    # Not one request through the proxy while a storage server refuses: the proxy would
    # error-limit it for a minute, and the user would get 503 long after it is up.
    assert result.stdout.splitlines()[-1] == ("late swift round trip: waits for the 1 storage servers above "
                                              "that do not answer yet")
    assert not [s for s in cloud.server.seen if s.path.startswith("/v1/")]


@on()
def test_cloud_ready_with_a_wrong_password_is_late_for_the_token(version, cloud, tmp_path):
    result = ready(version, cloud, tmp_path, OS_PASSWORD="'not-the-password'")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-2:] == ["late token for myuser: keystone answered HTTP 401",
                                               "late swift round trip: needs the token above"]
    assert "not-the-password" not in result.stdout + result.stderr


@on()
def test_cloud_ready_needs_an_object_store_in_the_catalog(version, cloud, tmp_path):
    cloud.catalog = False
    result = ready(version, cloud, tmp_path)
    assert result.returncode == 1
    assert "late token for myuser: no public object-store endpoint in the catalog" in result.stdout.splitlines()


@on()
def test_cloud_ready_with_keystone_down(version, cloud, tmp_path):
    auth = f"http://127.0.0.1:{closed_port()}/v3"
    result = ready(version, cloud, tmp_path, OS_AUTH_URL=auth)
    assert result.returncode == 1
    assert "late token for myuser: Connection refused" in result.stdout.splitlines()


@on()
def test_cloud_ready_refuses_an_openrc_without_a_password(version, cloud, tmp_path):
    result = ready(version, cloud, tmp_path, OS_PASSWORD=None)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (f"cloud_ready.py: {tmp_path / 'demo-openrc'}: no OS_PASSWORD "
                             "(expected a line `export OS_PASSWORD=...`)\n")
    assert cloud.server.seen == []


@on()
@pytest.mark.parametrize("args, expected", [
    (["/nonexistent/demo-openrc", "http://controller:8080", "[]"], "/nonexistent/demo-openrc: cannot read"),
    (["OPENRC", "http://controller:8080", "172.31.0.5:6200"], 'STORAGE_JSON: expected a JSON list of "ip:port"'),
    (["OPENRC", "http://controller:8080", '["172.31.0.5"]'], 'STORAGE_JSON: expected a JSON list of "ip:port"'),
    (["OPENRC", "controller:8080", "[]"], "PROXY_URL: expected a URL like http://controller:8080"),
    (["OPENRC", "http://controller:8080"], "usage: cloud_ready.py OPENRC PROXY_URL STORAGE_JSON"),
])
def test_cloud_ready_refuses_bad_arguments(version, cloud, tmp_path, args, expected):
    rc = tmp_path / "demo-openrc"
    rc.write_text(openrc(cloud))
    result = run(version, "cloud_ready.py", *[str(rc) if a == "OPENRC" else a for a in args])
    assert result.returncode == 2
    assert result.stderr.startswith(f"cloud_ready.py: {expected}"), result.stderr
    assert len(result.stderr.splitlines()) == 1


# ------------------------------------------------------------------ a TempAuth lab's swiftrc
def swiftrc_for(cloud: FakeCloud, key: str | None = None) -> str:
    """The lab's own demo-swiftrc text, pointed at the fake cloud's TempAuth."""
    secrets = Secrets({"admin_pass": "admin-secret-pass", "demo_pass": key or cloud.password})
    return swiftrc(inventory(), secrets, "demo").replace(AUTH_URL, f"{cloud.url}/auth/v1.0")


@on()
def test_cloud_ready_with_a_swiftrc_takes_tempauths_token_and_storage_url(version, cloud, tmp_path):
    result = ready(version, cloud, tmp_path, rc_text=swiftrc_for(cloud))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["ok proxy healthcheck",
                                          f"ok storage 127.0.0.1:{cloud.storage.port} healthcheck",
                                          "ok token for demo:demo", "ok swift round trip"]
    assert [s.path for s in cloud.server.seen if s.path.startswith("/auth/")] == ["/auth/v1.0"]
    assert not any(s.path.startswith("/v3/") for s in cloud.server.seen)
    assert cloud.containers == {}


@on()
def test_cloud_ready_with_a_wrong_tempauth_key_is_late_for_the_token(version, cloud, tmp_path):
    result = ready(version, cloud, tmp_path, rc_text=swiftrc_for(cloud, key="not-the-demo-key"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "late token for demo:demo: tempauth answered HTTP 401" in lines
    assert "late swift round trip: needs the token above" in lines


@on()
def test_cloud_ready_refuses_a_swiftrc_without_a_key(version, cloud, tmp_path):
    no_key = f"export ST_AUTH={cloud.url}/auth/v1.0\nexport ST_USER=demo:demo\n"
    result = ready(version, cloud, tmp_path, rc_text=no_key)
    assert result.returncode == 2
    assert result.stderr == (f"cloud_ready.py: {tmp_path / 'demo-swiftrc'}: no ST_KEY "
                             "(expected a line `export ST_KEY=...`)\n")
