"""The TLS front door in the plan (issue 23): Apache on the controller serving HTTPS on 443 only,
/identity and Swift's API (at the root) proxied to the guide's services, the dashboard's snippets included;
the lab's CA (certificate only) in the controller's trust; the catalog's public endpoints through
the door, internal and admin the guide's; none of it in a TempAuth lab; no private key shown."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from identity_host import IdentityHost
from plan_fixtures import (  # noqa: F401 - planned is a fixture
    actions,
    file_on,
    inventory,
    planned,
    step_named,
)
from rich.console import Console

from bootstrap.actions import Command, FileSpec, Service, Wait
from bootstrap.components import front_door
from bootstrap.plan import PHASE_NEEDS
from bootstrap.planner import build_plan
from bootstrap.report import render_plan, render_shell
from labcore import front_door_cert, lab_ca
from labcore.front_door import front_door as door_of
from labcore.secrets import generate

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
DOOR = "https://10.0.0.11"  # the fixtures' controller: no public name, so its address


def _tls_plan(tmp_path, os_name="debian-12", auth="keystone"):
    inv = inventory(os_name).model_copy(update={"auth": auth})
    secrets = front_door_cert.key_masking(generate())
    pair, ca, _ = front_door_cert.for_plan(tmp_path, inv.lab, door_of(inv), NOW, make=True)
    return inv, secrets, pair, build_plan(inv, secrets, pair, ca)


def _directives(vhost: str) -> list[str]:
    return [" ".join(line.split()) for line in vhost.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_vhost_serves_tls_on_443_and_proxies_identity_and_swift(planned):
    _, plan = planned
    vhost = file_on(plan, "controller", front_door.SITE_CONF)
    lines = _directives(vhost)
    assert lines[0] == "<VirtualHost *:443>" and lines[-1] == "</VirtualHost>"
    assert re.findall(r"<VirtualHost ([^>]+)>", vhost) == ["*:443"] and "Listen" not in vhost
    assert "SSLEngine on" in lines
    assert f"SSLCertificateFile {front_door.SERVER_CERT}" in lines
    assert f"SSLCertificateKeyFile {front_door.SERVER_KEY}" in lines
    assert "ProxyPass /identity http://controller:5000 retry=0 nocanon" in lines
    # Swift at the root, its paths unchanged (a TempURL signs the path), asked as controller:8080
    for path in ("/v1", "/info", "/crossdomain.xml", "/healthcheck"):  # each a Tempest test asks
        assert f"ProxyPass {path} http://controller:8080{path} retry=0 nocanon" in lines
        assert f"ProxyPassReverse {path} http://controller:8080{path}" in lines
    assert '<LocationMatch "^(/v1|/info|/crossdomain[.]xml|/healthcheck)"> ProxyPreserveHost Off </LocationMatch>' in \
        " ".join(lines)
    assert 'RequestHeader set X-Forwarded-Proto "https"' in lines and "ProxyPreserveHost On" in lines
    assert 'RequestHeader set X-Forwarded-Prefix "/identity"' in lines
    assert "IncludeOptional /etc/apache2/lab-front-door/*.conf" in lines  # the dashboard's snippet
    assert "ServerName 10.0.0.11" in lines


def test_the_key_is_0600_root_and_the_files_the_vhost_names_are_the_ones_written(tmp_path):
    _, _, pair, plan = _tls_plan(tmp_path)
    step = step_named(plan, "front-door", "controller")
    files = {f.path: f for f in actions(step, FileSpec)}
    key, cert = files[front_door.SERVER_KEY], files[front_door.SERVER_CERT]
    assert (key.mode, key.owner, key.content) == (0o600, "root:root", pair.key_pem.decode())
    assert (cert.mode, cert.content) == (0o644, pair.cert_pem.decode())
    # the files come before what starts Apache, and the door is waited for through its name, trusted
    kinds = [type(a) for a in step.actions]
    assert kinds.index(Service) > max(i for i, k in enumerate(kinds) if k is FileSpec)
    assert actions(step, Service)[0].units == ("apache2",)
    assert actions(step, Wait)[0].command(15).endswith(f"wait_http.py {DOOR}/ 15")


def test_on_debian_apache_listens_on_443_alone_and_on_ubuntu_keystones_apache_keeps_its_ports():
    debian = build_plan(inventory("debian-12"), generate())
    assert [" ".join(line.split()) for line in file_on(debian, "controller", front_door.PORTS_CONF).splitlines()
            if line and not line.startswith("#")] == ["Listen 443"]
    enable = actions(step_named(debian, "front-door", "controller"), Command)[0]
    assert "a2dissite -q 000-default" in enable.run and "a2enmod -q ssl proxy proxy_http headers" in enable.run
    ubuntu = build_plan(inventory("ubuntu-18.04"), generate())
    assert not [f for s in ubuntu.steps for f in s.files if f.path == front_door.PORTS_CONF]
    assert not any("a2dissite" in c for c in actions(step_named(ubuntu, "front-door", "controller"), Command)[0].run)


def test_the_controller_trusts_the_labs_ca_certificate_and_never_sees_its_key(tmp_path):
    _, secrets, pair, plan = _tls_plan(tmp_path)
    ca_cert = (tmp_path / lab_ca.CA_CERT).read_bytes()
    ca_key = (tmp_path / lab_ca.CA_KEY).read_bytes()
    assert file_on(plan, "controller", front_door.TRUSTED_CA) == ca_cert.decode()
    trust = step_named(plan, "front-door-trust", "controller")
    assert actions(trust, Command)[0].run == ("update-ca-certificates",)

    everything = json.dumps([[a.__dict__ for a in s.actions] for s in plan.steps], default=str)
    body = [line for line in ca_key.decode().splitlines() if not line.startswith("-----")]
    assert body and not any(line in everything for line in body)
    assert all(ca_key.decode() not in f.content for s in plan.steps for f in s.files)


def test_the_server_key_is_never_shown_by_plan_json_text_or_shell(tmp_path):
    _, secrets, pair, plan = _tls_plan(tmp_path)
    console = Console(record=True, width=300)
    render_plan(plan, secrets, console)
    render_shell(plan, secrets, console)
    shown = plan.to_json(secrets) + console.export_text()
    body = [line for line in pair.key_pem.decode().splitlines() if not line.startswith("-----")]
    assert not any(line in shown for line in body)
    assert f"write {front_door.SERVER_KEY} (0600 root:root)" in shown


def test_two_builds_with_the_same_stored_pair_are_the_same_plan(tmp_path):
    inv, secrets, pair, first = _tls_plan(tmp_path)
    again, ca, made = front_door_cert.for_plan(tmp_path, inv.lab, door_of(inv), NOW, make=True)
    assert not made and again == pair
    assert build_plan(inv, secrets, again, ca) == first


def test_before_any_install_the_plan_says_the_files_are_made_later():
    plan = build_plan(inventory("debian-12"), generate())
    for path in (front_door.SERVER_KEY, front_door.SERVER_CERT, front_door.TRUSTED_CA):
        assert file_on(plan, "controller", path).startswith("# made by `lab up` and `lab install`")


def test_the_door_is_up_before_keystones_commands_which_use_the_public_endpoint():
    assert "front-door" in PHASE_NEEDS["keystone"] and PHASE_NEEDS["front-door"] == ("service-packages",)
    plan = build_plan(inventory("debian-12"), generate())
    assert [s.name for s in plan.steps if s.phase == "front-door"] == ["front-door"]
    # the trust needs no OpenStack package: it is made while apt still unpacks them
    assert step_named(plan, "front-door-trust", "controller").phase == "controller-services"
    assert all(s.hosts == ("controller",) for s in plan.steps if s.name.startswith("front-door"))


def test_a_tempauth_lab_has_no_front_door(tmp_path):
    plan = build_plan(inventory("debian-12").model_copy(update={"auth": "tempauth"}), generate())
    paths = {f.path for s in plan.steps for f in s.files}
    assert not [s for s in plan.steps if s.name.startswith("front-door")]
    assert not {front_door.SITE_CONF, front_door.SERVER_KEY, front_door.TRUSTED_CA} & paths
    shown = plan.to_json(generate())
    assert "*:443" not in shown and "Listen 443" not in shown and "/etc/apache2" not in shown


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_public_endpoints_are_the_doors_and_internal_and_admin_the_guides(os_name):
    plan = build_plan(inventory(os_name), generate())
    bootstrap = actions(step_named(plan, "keystone-service", "controller"), Command)[0]
    urls = dict(re.findall(r"--bootstrap-(admin|internal|public)-url (\S+)", bootstrap.run[2]))
    assert urls == {"public": f"{DOOR}/identity/v3/", "internal": "http://controller:5000/v3/",
                    "admin": "http://controller:5000/v3/"}
    # done only when each interface has its URL (an older lab's public http one runs bootstrap again)
    assert f"e.interface = 'public' AND e.url = '{DOOR}/identity/v3/'" in bootstrap.unless
    assert "e.url = 'http://controller:5000/v3/'" in bootstrap.unless and "= 3 ]" in bootstrap.unless
    creates = [a.argv for a in step_named(plan, "swift-identity", "controller").actions
               if getattr(a, "argv", ())[:2] == ("endpoint", "create")]
    assert [c[-2:] for c in creates] == [("public", f"{DOOR}/v1/AUTH_%(project_id)s"),
                                         ("internal", "http://controller:8080/v1/AUTH_%(project_id)s"),
                                         ("admin", "http://controller:8080/v1")]
    keystone_conf = file_on(plan, "controller", "/etc/keystone/keystone.conf")
    assert "[oslo_middleware]\nenable_proxy_headers_parsing = true" in keystone_conf


def test_an_older_labs_public_object_store_endpoint_is_set_to_the_door_not_made_twice(tmp_path):
    plan = build_plan(inventory("debian-12"), generate())
    step = step_named(plan, "swift-identity", "controller")
    # Keystone has every entity; the public object-store endpoint is the guide's http one (id abc123)
    host = IdentityHost(tmp_path, [(r"SELECT e\.id .*e\.url <>", "abc123"), (r"e\.url <>", "1"), (r".", "1")])
    calls = tmp_path / "endpoint-set.txt"
    client = tmp_path / "bin" / "openstack"
    client.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    client.chmod(0o755)

    assert host.install(step, tmp_path).ok
    assert host.sent() == [["user", "set", "--password", host_secret(plan, "swift"), "swift"]]
    assert calls.read_text() == f"endpoint set --url {DOOR}/v1/AUTH_%(project_id)s abc123\n"

    host.answer([(r"e\.url <>", "0"), (r".", "1")])  # now it is the door's: nothing more
    calls.unlink()
    assert host.install(step, tmp_path).counts()["changed"] == 0 and not calls.exists()


def host_secret(plan, user: str) -> str:
    (create,) = [a for s in plan.steps for a in s.actions if getattr(a, "argv", ())[:2] == ("user", "create")
                 and a.argv[-1] == user]
    return create.argv[create.argv.index("--password") + 1]


def test_lab_plan_json_of_an_installed_lab_holds_its_certificate_and_never_its_keys(capsys):
    """`lab plan` reads the stored pair (nothing is made); the server key is masked, the CA key absent."""
    from test_plan_cli import lab_plan, saved_lab

    paths, _ = saved_lab("ubuntu-18.04")
    pair, _, made = front_door_cert.for_plan(paths.root, "rocky-lab", door_of(inventory("ubuntu-18.04")),
                                             datetime.now(timezone.utc), make=True)
    assert made
    shown = lab_plan(capsys, "--json")
    files = {a["path"]: a for r in json.loads(shown) for a in r["actions"] if a["action"] == "FileSpec"}
    assert files[front_door.SERVER_CERT]["content"] == pair.cert_pem.decode()
    assert files[front_door.SERVER_KEY]["content"] == "-----BEGIN PRIVATE KEY-----\n********\n-----END PRIVATE KEY-----\n"
    for secret in (pair.key_pem, paths.ca_key.read_bytes()):
        assert not any(line in shown for line in secret.decode().splitlines() if not line.startswith("-----"))
    assert sorted(p.name for p in paths.root.glob("*.pem")) == ["ca-key.pem", "ca.pem", "front-door-key.pem",
                                                                "front-door.pem"]
