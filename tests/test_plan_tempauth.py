"""A Swift-only lab (auth: tempauth): what its plan has and lacks, the proxy pipeline, the swiftrc
files, what `lab plan` says and shows (secrets masked), its verify checks and its security group."""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from fakes import run_with_fake_client
from launch_fixtures import ec2, moto_images, run_up, spec_with  # noqa: F401 - ec2 and moto_images are fixtures
from plan_fixtures import inventory

from bootstrap.actions import FileSpec, Packages, Sql
from bootstrap.components.swift_proxy import PIPELINE
from bootstrap.components.tempauth import AUTH_URL, TEMPAUTH_PIPELINE
from bootstrap.planner import build_plan
from bootstrap.verify import TEMPAUTH_ROUND_TRIP, verify_checks
from lab import cli, security_group
from lab.commands.install import _write_rc_files
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.secrets import ensure_secrets, generate

ROOT = Path(__file__).resolve().parent.parent
TEMPAUTH_CONFIG = str(ROOT / "configs" / "tempauth.yaml")
KEYSTONE_ONLY_PACKAGES = {"mariadb-server", "rabbitmq-server", "etcd", "etcd-server", "keystone", "apache2",
                          "python-openstackclient", "python3-openstackclient", "python-keystonemiddleware",
                          "python3-keystonemiddleware"}


def tempauth_inventory(os_name: str = "ubuntu-18.04"):
    return inventory(os_name).model_copy(update={"lab": "swift-lab", "auth": "tempauth"})


@pytest.fixture(params=["ubuntu-18.04", "debian-12"])
def planned(request):
    secrets = generate()
    return tempauth_inventory(request.param), secrets, build_plan(tempauth_inventory(request.param), secrets)


def _files(plan) -> dict[str, FileSpec]:
    return {a.path: a for s in plan.steps for a in s.actions if isinstance(a, FileSpec)}


def test_the_plan_keeps_chrony_memcached_and_swift_and_leaves_out_keystone_and_its_environment(planned):
    _, _, plan = planned
    phases = {s.phase for s in plan.steps}
    assert "keystone" not in phases
    names = {s.name for s in plan.steps}
    for kept in ("chrony-controller", "chrony-follow-controller", "memcached-listen", "swift-proxy-config",
                 "swift-storage-config", "swift-rings", "swift-rings-copy", "swift-proxy-start",
                 "swift-storage-start", "cloud-ready"):
        assert kept in names, kept
    assert not [n for n in names if re.search(r"mariadb|database|rabbit|messag|etcd|keystone|identity|openrc", n)]
    assert not [a for s in plan.steps for a in s.actions if isinstance(a, Sql)]
    installed = {n for s in plan.steps for a in s.actions if isinstance(a, Packages) for n in a.names}
    assert {"chrony", "memcached", "swift-proxy", "swift-object"} <= installed
    assert not installed & KEYSTONE_ONLY_PACKAGES
    assert all(not a.debconf for s in plan.steps for a in s.actions if isinstance(a, Packages))


def test_the_proxy_pipeline_has_tempauth_where_the_guide_has_authtoken_keystoneauth(planned):
    _, secrets, plan = planned
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str
    conf.read_string(_files(plan)["/etc/swift/proxy-server.conf"].content)
    pipeline = conf["pipeline:main"]["pipeline"].split()
    at = PIPELINE.index("authtoken")
    assert pipeline == [*PIPELINE[:at], "tempauth", *PIPELINE[at + 2:]] == list(TEMPAUTH_PIPELINE)
    assert pipeline[-1] == "proxy-server" and "cache" in pipeline[:pipeline.index("tempauth")]
    assert not {"filter:authtoken", "filter:keystoneauth"} & set(conf.sections())
    own = {key: value for key, value in conf["filter:tempauth"].items() if key not in conf.defaults()}
    assert own == {
        "use": "egg:swift#tempauth",
        "user_admin_admin": f"{secrets['admin_pass']} .admin .reseller_admin",
        "user_demo_demo": f"{secrets['demo_pass']} .admin"}
    assert conf["filter:cache"]["memcache_servers"] == "controller:11211"
    for section in (f"filter:{name}" for name in pipeline if name != "proxy-server"):
        assert section in conf.sections(), section


def test_swiftrc_files_on_the_controller_hold_st_auth_st_user_st_key_0600(planned):
    _, secrets, plan = planned
    files = _files(plan)
    for which, user, secret in (("admin", "admin:admin", "admin_pass"), ("demo", "demo:demo", "demo_pass")):
        rc = files[f"/root/{which}-swiftrc"]
        assert rc.mode == 0o600
        assert rc.content == f"export ST_AUTH={AUTH_URL}\nexport ST_USER={user}\nexport ST_KEY={secrets[secret]}\n"
    assert AUTH_URL == "http://controller:8080/auth/v1.0"
    assert not [p for p in files if p.endswith("openrc")]
    ready = next(s for s in plan.steps if s.name == "cloud-ready")
    assert "/root/demo-swiftrc" in ready.actions[0].command(15)


def test_the_swiftrc_files_here_are_0600_and_the_same_as_on_the_controller(tmp_path):
    paths = LabPaths(tmp_path / "swift-lab")
    paths.root.mkdir()
    secrets, inv = generate(), tempauth_inventory()
    line = _write_rc_files(paths, inv, secrets)
    assert line == f"swiftrc files: {paths.swiftrc('admin')}, {paths.swiftrc('demo')} (mode 0600)"
    on_controller = _files(build_plan(inv, secrets))
    for which in ("admin", "demo"):
        assert stat.S_IMODE(os.stat(paths.swiftrc(which)).st_mode) == 0o600
        assert paths.swiftrc(which).read_text() == on_controller[f"/root/{which}-swiftrc"].content
    assert not list(paths.root.glob("*-openrc"))
    assert set(paths.forget()) >= {paths.swiftrc("admin"), paths.swiftrc("demo")}  # `lab down` takes them


def saved_tempauth_lab():
    paths = LabPaths.for_lab("swift-lab").ensure()
    save_inventory(tempauth_inventory(), paths.inventory)
    return ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)


def test_lab_plan_says_which_chapters_are_left_out_and_why_and_masks_the_keys(capsys):
    secrets = saved_tempauth_lab()
    assert cli.main(["plan", "--config", TEMPAUTH_CONFIG, "--target", "aws"]) == 0
    out = capsys.readouterr().out
    left = [line for line in out.splitlines() if line.startswith("left out")]
    assert left == [
        "left out (auth: tempauth, Swift alone): SQL database (MariaDB): only Keystone keeps data in it",
        "left out (auth: tempauth, Swift alone): message queue (RabbitMQ): no service of a Swift-only lab uses one",
        "left out (auth: tempauth, Swift alone): etcd: no service of a Swift-only lab uses it",
        "left out (auth: tempauth, Swift alone): identity service (Keystone): Swift's TempAuth, in the proxy, "
        "authenticates the users"]
    assert "phase swift-proxy (2 steps; after controller-services, service-packages on the same host)" in out
    assert "phase keystone" not in out and "phase controller-services (1 steps" in out
    assert all(value not in out for value in secrets.values.values())
    for flags in (["--json"], ["--shell"]):
        assert cli.main(["plan", *flags, "--config", TEMPAUTH_CONFIG, "--target", "aws"]) == 0
        shown = capsys.readouterr().out
        assert all(value not in shown for value in secrets.values.values()), flags
        assert "user_demo_demo" in shown or flags == ["--shell"]


def test_a_keystone_lab_plan_leaves_nothing_out(capsys):
    paths = LabPaths.for_lab("rocky-lab").ensure()
    save_inventory(inventory(), paths.inventory)
    ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    assert cli.main(["plan", "--config", str(ROOT / "configs" / "lab.yaml"), "--target", "aws"]) == 0
    out = capsys.readouterr().out
    assert "left out" not in out and "phase keystone (4 steps" in out


# ------------------------------------------------------------------ verify
def test_verify_of_a_tempauth_lab_checks_v1_auth_swift_stat_and_the_round_trip_with_swiftrc():
    checks = verify_checks(tempauth_inventory())
    names = [c.name for c in checks]
    assert "tempauth v1 auth /auth/v1.0 (admin)" in names and "tempauth v1 auth /auth/v1.0 (demo)" in names
    assert not [c for c in checks if re.search(r"(^|[;&|] *)openstack |openrc", c.command, re.M)]
    stat_check = next(c for c in checks if c.name == "swift stat (demo)")
    assert stat_check.command == ". /root/demo-swiftrc && swift stat"
    auth = next(c for c in checks if c.name.endswith("(demo)") and "auth" in c.name)
    assert auth.command.startswith(". /root/demo-swiftrc && swift auth")
    assert re.search(auth.expect, "http://controller:8080/v1/AUTH_demo", re.M)
    assert next(c for c in checks if "round trip" in c.name).command == \
        TEMPAUTH_ROUND_TRIP.format(openrc="/root/demo-swiftrc")


FAKE_SWIFT = """#!/bin/sh
# A Swift of files: post C | upload C FILE | list C | download -o F C O | delete C. CORRUPT=1 hands back other bytes.
store="$STORE"
[ "$ST_USER" = demo:demo ] || { echo "swift: no ST_USER" >&2; exit 1; }
case "$1" in
  post) mkdir "$store/$2" ;;
  upload) cp "$3" "$store/$2/$(basename "$3")" ;;
  list) ls "$store/$2" ;;
  download) if [ -n "$CORRUPT" ]; then echo other > "$3"; else cp "$store/$4/$5" "$3"; fi ;;
  delete) rm -rf "$store/$2" ;;
  *) echo "swift: unexpected $*" >&2; exit 2 ;;
esac
"""


def _round_trip(tmp_path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "demo-swiftrc").write_text("export ST_USER=demo:demo\n")
    script = TEMPAUTH_ROUND_TRIP.format(openrc="/root/demo-swiftrc")
    return run_with_fake_client(tmp_path, script, "swift", FAKE_SWIFT, "demo-swiftrc", **env)


def test_the_tempauth_round_trip_stores_reads_back_compares_and_cleans_up(tmp_path):
    done = _round_trip(tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"round trip ok: 1 MiB object, sha256 [0-9a-f]{64}\n", done.stdout)
    assert list((tmp_path / "store").iterdir()) == []


def test_the_tempauth_round_trip_fails_on_other_bytes_and_still_cleans_up(tmp_path):
    done = _round_trip(tmp_path, CORRUPT="1")
    assert done.returncode == 1 and "checksum mismatch" in done.stderr
    assert list((tmp_path / "store").iterdir()) == []


# ------------------------------------------------------------------ the security group (moto)
KEYSTONE_PORTS = {("tcp", 3306, 3306), ("tcp", 5672, 5672), ("tcp", 2379, 2380), ("tcp", 5000, 5000)}
SWIFT_PORTS = {("tcp", 11211, 11211), ("tcp", 8080, 8080), ("udp", 123, 123), ("tcp", 6200, 6202), ("tcp", 873, 873)}


def _group_ports(ec2, lab: str) -> set[tuple]:
    group = ec2.describe_security_groups(Filters=[{"Name": "tag:lab:name", "Values": [lab]}])["SecurityGroups"][0]
    return {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group["IpPermissions"]
            if p.get("UserIdGroupPairs")}


def test_a_tempauth_labs_group_opens_only_the_ports_swift_uses(ec2):
    report = run_up(spec_with("auth: tempauth\n"))
    assert report.inventory.auth == "tempauth"
    assert _group_ports(ec2, "rocky-lab") == SWIFT_PORTS | {("icmp", -1, -1)}
    assert LabPaths.for_lab("rocky-lab").inventory.read_text().count("auth: tempauth") == 1


def test_a_keystone_labs_group_opens_keystone_and_its_environment_too(ec2):
    report = run_up(spec_with())
    assert report.inventory.auth == "keystone"
    assert _group_ports(ec2, "rocky-lab") == SWIFT_PORTS | KEYSTONE_PORTS | {("icmp", -1, -1)}


def test_desired_ingress_of_tempauth_lacks_exactly_the_keystone_ports():
    def ports(auth):
        return {(r["IpProtocol"], r["FromPort"], r["ToPort"])
                for r in security_group.desired_ingress("sg-1", ["198.51.100.7/32"], auth) if r.get("UserIdGroupPairs")}
    assert ports("keystone") - ports("tempauth") == KEYSTONE_PORTS


def test_the_example_config_is_a_small_tempauth_lab_and_says_its_cost(capsys):
    assert cli.main(["up", "--dry-run", "--config", TEMPAUTH_CONFIG, "--target", "aws"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cost: $0.105/hour, $2.53/day in ap-northeast-2 (3 x t3.small $0.026/h;")
    assert "controller t3.small" in out


def test_plan_json_of_a_tempauth_lab_is_steps_only(capsys):
    saved_tempauth_lab()
    assert cli.main(["plan", "--json", "--config", TEMPAUTH_CONFIG, "--target", "aws"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert not [r for r in rows if r["phase"] == "keystone"]


def test_the_benchs_floors_install_what_the_tempauth_plan_installs_on_the_configs_hosts(monkeypatch):
    """make bench-twin --config configs/tempauth.yaml compares the install with the floor of the same packages."""
    from bench_modules import load

    from lab.config import load_config

    floor = load("sim_install_floor", monkeypatch)
    lab_hosts, packages = floor.lab_hosts, floor.packages

    plan = build_plan(tempauth_inventory("debian-12"), generate())
    installed = {n for s in plan.steps for a in s.actions if isinstance(a, Packages) for n in a.names}
    assert set(packages(["controller", "object"], "tempauth")) == installed
    assert [(role, kind) for _, role, kind, _ in lab_hosts(load_config(TEMPAUTH_CONFIG))] == \
        [("controller", "t3.small"), ("object", "t3.small"), ("object", "t3.small")]


def test_status_and_the_report_say_the_lab_is_swift_only(capsys):
    from bootstrap.report_html.model import ReportData
    from bootstrap.report_html.page import render_page
    from lab.commands.status import _print

    _print({"lab": "swift-lab", "region": "ap-northeast-2", "target": "aws", "endpoint_url": None, "running": True,
            "auth": "tempauth", "instances": [], "volumes": [], "security_groups": [], "key_pairs": []})
    assert "Swift only (auth: tempauth): no Keystone, MariaDB, RabbitMQ or etcd" in capsys.readouterr().out
    assert "Swift only with TempAuth (no Keystone), rocky" in render_page(ReportData(lab="swift-lab", release="rocky",
                                                                                    auth="tempauth"))
    assert "OpenStack rocky" in render_page(ReportData(lab="rocky-lab", release="rocky"))
