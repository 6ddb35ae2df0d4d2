"""The Swift half of the plan against the guide: proxy, storage nodes, rings, finalize. No SSH."""

from __future__ import annotations

import configparser
import gzip
import json
import os
import pickle
import re
import shlex
import struct
import subprocess
import sys

import pytest

from bootstrap.components import finalize, swift_proxy, swift_rings, swift_storage
from bootstrap.context import PlanContext
from bootstrap.plan import Plan, Step
from lab.errors import LabError
from lab.inventory import Inventory, NodeRecord, VolumeRecord
from lab.secrets import MASK, generate

MODULES = (swift_proxy, swift_storage, swift_rings, finalize)
GUIDE_PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging cache container_sync bulk ratelimit authtoken "
                  "keystoneauth container-quotas account-quotas slo dlo versioned_writes proxy-logging proxy-server")
PORTS = {"account": 6202, "container": 6201, "object": 6200}
IPS = {"controller": "10.0.0.11", "object1": "10.0.0.51", "object2": "10.0.0.52"}


def node(name: str, role: str, volumes: tuple[str, ...] = ()) -> NodeRecord:
    ip = IPS[name]
    return NodeRecord(name=name, role=role, instance_id=f"i-{name}", instance_type="t3.medium", az="ap-northeast-2a",
                      private_ip=ip, ssh_host=ip, ssh_user="ubuntu",
                      volumes=[VolumeRecord(name=v, volume_id=f"vol-{name}-{v}", size_gb=10, device=f"/dev/sd{v[-1]}")
                               for v in volumes])


def context(os_name: str = "ubuntu-18.04", volumes: tuple[str, ...] = ("sdb", "sdc")) -> PlanContext:
    """The guide's layout: controller, object1 and object2 with the given devices each."""
    target = "aws" if os_name.startswith("ubuntu") else "sim"
    inventory = Inventory(lab="rocky-lab", target=target, region="ap-northeast-2", os=os_name, release="rocky",
                          subnet_cidr="10.0.0.0/24", key_file="k", known_hosts="h",
                          nodes=[node("controller", "controller"), node("object1", "object", volumes),
                                 node("object2", "object", volumes)])
    return PlanContext.for_inventory(inventory, generate())


def swift_plan(ctx: PlanContext) -> Plan:
    return Plan(tuple(step for module in MODULES for step in module.steps(ctx)))


def step_named(plan: Plan, name: str, host: str) -> Step:
    return next(s for s in plan.for_host(host) if s.name == name)


def file_on(plan: Plan, host: str, path: str) -> str:
    contents = [f.content for s in plan.for_host(host) for f in s.files if f.path == path]
    assert len(contents) == 1, f"{path} planned {len(contents)} times on {host}"
    return contents[0]


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def sh(command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env)


@pytest.fixture(params=["ubuntu-18.04", "debian-12"])
def ctx(request) -> PlanContext:
    return context(request.param)


# ------------------------------------------------------------------ proxy
def test_proxy_listens_on_8080_with_the_guides_keystone_pipeline(ctx):
    conf = ini(file_on(swift_plan(ctx), "controller", "/etc/swift/proxy-server.conf"))
    assert conf["DEFAULT"]["bind_port"] == "8080"
    assert conf["DEFAULT"]["user"] == "swift"
    assert conf["DEFAULT"]["swift_dir"] == "/etc/swift"
    assert conf["pipeline:main"]["pipeline"] == GUIDE_PIPELINE
    assert conf["app:proxy-server"]["use"] == "egg:swift#proxy"
    assert conf["app:proxy-server"]["account_autocreate"] == "True"
    assert not conf.has_section("filter:tempauth")
    for name in set(GUIDE_PIPELINE.split()) - {"proxy-server"}:
        section = conf[f"filter:{name}"]
        assert section.get("use", "").startswith("egg:swift#") or "paste.filter_factory" in section, name
    assert conf["filter:proxy-logging"]["use"] == "egg:swift#proxy_logging"


def test_proxy_config_is_readable_by_swift_only(ctx):
    spec = next(f for f in step_named(swift_plan(ctx), "swift-proxy-config", "controller").files)
    assert (spec.path, spec.mode, spec.owner) == ("/etc/swift/proxy-server.conf", 0o640, "root:swift")


def test_keystoneauth_lets_the_demo_users_myrole_in():
    conf = ini(file_on(swift_plan(context()), "controller", "/etc/swift/proxy-server.conf"))
    roles = conf["filter:keystoneauth"]["operator_roles"].split(",")
    assert "admin" in roles and "myrole" in roles


def test_authtoken_uses_keystone_on_5000_and_35357_appears_nowhere(ctx):
    plan = swift_plan(ctx)
    conf = ini(file_on(plan, "controller", "/etc/swift/proxy-server.conf"))
    token = conf["filter:authtoken"]
    assert token["www_authenticate_uri"] == token["auth_url"] == "http://controller:5000"
    assert token["memcached_servers"] == "controller:11211"
    assert (token["auth_type"], token["project_name"], token["username"]) == ("password", "service", "swift")
    assert token["project_domain_id"] == token["user_domain_id"] == "default"
    assert token["password"] == ctx.secrets["swift_pass"]
    assert token["delay_auth_decision"] == "True"
    assert conf["filter:cache"]["memcache_servers"] == "controller:11211"
    assert "35357" not in plan.to_json(ctx.secrets)


def test_swift_identity_creates_user_role_service_and_three_endpoints(ctx):
    step = step_named(swift_plan(ctx), "swift-identity", "controller")
    text = "\n".join(step.commands)
    *identity, stamp = step.commands
    assert all(c.startswith(". /root/admin-openrc && ") for c in identity)
    assert stamp.endswith(f"> {swift_proxy.IDENTITY_STAMP}")
    assert "openstack user create --domain default --password" in text
    assert "openstack role add --project service --user swift admin" in text
    assert "--description 'OpenStack Object Storage' object-store" in text
    for interface, url in (("public", "http://controller:8080/v1/AUTH_%(project_id)s"),
                           ("internal", "http://controller:8080/v1/AUTH_%(project_id)s"),
                           ("admin", "http://controller:8080/v1")):
        assert f"openstack endpoint create --region RegionOne object-store {interface} {shlex.quote(url)}" in text
    # The check asks the keystone database, not the API: user, grant, service, 3 right endpoints, 3 in all.
    assert step.check.startswith('[ "$(mysql -N -B keystone -e "')
    assert '= "1 1 1 3 3" ] && grep -qsx ' in step.check
    assert "http://controller:8080/v1/AUTH_%(project_id)s" in step.check


def test_no_check_calls_the_openstack_cli(ctx):
    for step in swift_plan(ctx).steps:
        assert "openstack" not in (step.check or ""), step.name


def test_every_command_and_check_is_posix_sh(ctx):
    for step in swift_plan(ctx).steps:
        for text in (*step.commands, *([step.check] if step.check else [])):
            result = subprocess.run(["dash", "-n", "-c", text], capture_output=True, text=True)
            assert result.returncode == 0, (step.name, text, result.stderr)


# ------------------------------------------------------------------ storage nodes
@pytest.mark.parametrize("host", ["object1", "object2"])
def test_storage_servers_bind_the_nodes_ip_on_the_guides_ports(ctx, host):
    plan = swift_plan(ctx)
    for server, port in PORTS.items():
        conf = ini(file_on(plan, host, f"/etc/swift/{server}-server.conf"))
        default = conf["DEFAULT"]
        assert (default["bind_ip"], default["bind_port"]) == (IPS[host], str(port))
        assert (default["user"], default["swift_dir"], default["devices"], default["mount_check"]) == (
            "swift", "/etc/swift", "/srv/node", "True")
        assert conf["pipeline:main"]["pipeline"] == f"healthcheck recon {server}-server"
        assert conf[f"app:{server}-server"]["use"] == f"egg:swift#{server}"
        assert conf["filter:healthcheck"]["use"] == "egg:swift#healthcheck"
        assert conf["filter:recon"]["recon_cache_path"] == "/var/cache/swift"
        assert conf.has_section(f"{server}-replicator") and conf.has_section(f"{server}-auditor")
    assert ini(file_on(plan, host, "/etc/swift/object-server.conf"))["filter:recon"]["recon_lock_path"] == "/var/lock"


def test_storage_configs_are_not_planned_on_the_controller(ctx):
    plan = swift_plan(ctx)
    paths = {f.path for s in plan.for_host("controller") for f in s.files}
    assert not paths & {"/etc/swift/account-server.conf", "/etc/rsyncd.conf"}


@pytest.mark.parametrize("host", ["object1", "object2"])
def test_rsyncd_serves_the_three_modules_on_the_nodes_ip(ctx, host):
    text = file_on(swift_plan(ctx), host, "/etc/rsyncd.conf")
    assert f"address = {IPS[host]}\n" in text
    assert "uid = swift\ngid = swift\n" in text
    for module in ("account", "container", "object"):
        assert (f"[{module}]\nmax connections = 2\npath = /srv/node/\nread only = False\n"
                f"lock file = /var/lock/{module}.lock\n") in text


def test_rsync_is_enabled_the_guides_way_on_ubuntu_and_by_systemd_on_debian():
    ubuntu = step_named(swift_plan(context("ubuntu-18.04")), "swift-rsync", "object1")
    assert any("RSYNC_ENABLE=true" in c and "/etc/default/rsync" in c for c in ubuntu.commands)
    assert "service rsync restart" in ubuntu.commands
    assert "RSYNC_ENABLE=true" in ubuntu.check and "systemctl is-active --quiet rsync" in ubuntu.check
    debian = step_named(swift_plan(context("debian-12")), "swift-rsync", "object1")
    assert debian.commands == ("systemctl enable rsync", "systemctl restart rsync")
    assert "/etc/default/rsync" not in " ".join(debian.commands)


def test_storage_directories_belong_to_swift(ctx):
    step = step_named(swift_plan(ctx), "swift-storage-config", "object1")
    assert "chown -R swift:swift /srv/node" in step.commands
    assert "chown -R root:swift /var/cache/swift" in step.commands
    assert "chmod -R 775 /var/cache/swift" in step.commands
    assert "/srv/node" in step.check and "/var/cache/swift" in step.check


def test_recon_cache_check_survives_debians_units_resetting_its_mode(ctx):
    """Debian's swift units (CacheDirectory=swift) make /var/cache/swift 755 swift:swift at each
    start; a check demanding the guide's 775 failed on every later `lab install`."""
    step = step_named(swift_plan(ctx), "swift-storage-config", "object1")
    assert "runuser -u swift -- test -w /var/cache/swift" in step.check
    assert "775" not in step.check


# ------------------------------------------------------------------ rings
def ring_commands(plan: Plan) -> list[str]:
    return list(step_named(plan, "swift-rings", "controller").commands)


def test_rings_are_built_on_the_controller_only(ctx):
    step = step_named(swift_plan(ctx), "swift-rings", "controller")
    assert (step.phase, step.hosts) == ("swift-rings", ("controller",))


@pytest.mark.parametrize("volumes, expected_replicas", [(("sdb", "sdc"), 3), (("sdb",), 2)])
def test_rings_use_part_power_10_and_replicas_up_to_the_device_count(volumes, expected_replicas):
    commands = ring_commands(swift_plan(context(volumes=volumes)))
    for ring in PORTS:
        assert f"swift-ring-builder /etc/swift/{ring}.builder create 10 {expected_replicas} 1" in commands


def test_a_lab_without_swift_devices_is_refused_with_advice():
    with pytest.raises(LabError, match="volumes"):
        swift_plan(context(volumes=()))


def test_rings_get_one_add_per_device_with_ip_port_and_zone(ctx):
    commands = ring_commands(swift_plan(ctx))
    for ring, port in PORTS.items():
        adds = [c for c in commands if c.startswith(f"swift-ring-builder /etc/swift/{ring}.builder add ")]
        assert adds == [
            f"swift-ring-builder /etc/swift/{ring}.builder add --region 1 --zone {zone} --ip {ip} "
            f"--port {port} --device {device} --weight 100"
            for zone, ip in ((1, "10.0.0.51"), (2, "10.0.0.52")) for device in ("sdb", "sdc")]


def test_each_ring_is_created_then_filled_then_rebalanced(ctx):
    commands = ring_commands(swift_plan(ctx))
    for ring in PORTS:
        mine = [c for c in commands if f"/etc/swift/{ring}." in c]
        assert mine[0] == f"rm -f /etc/swift/{ring}.builder /etc/swift/{ring}.ring.gz"
        assert " create " in mine[1]
        assert all(" add " in c for c in mine[2:-1]) and len(mine[2:-1]) == 4
        assert mine[-1].startswith(f"swift-ring-builder /etc/swift/{ring}.builder rebalance")


def test_rings_are_copied_to_every_storage_node_after_they_are_built(ctx):
    plan = swift_plan(ctx)
    phases = [phase for phase, _ in plan.phases()]
    copy = next(s for s in plan.steps if s.copies)
    assert copy.hosts == ("object1", "object2")
    assert phases.index(copy.phase) > phases.index("swift-rings")  # never read while the controller writes
    assert {(c.source_host, c.path, c.owner) for c in copy.copies} == {
        ("controller", f"/etc/swift/{ring}.ring.gz", "root:swift") for ring in PORTS}
    for host in copy.hosts:  # the rings are there before the storage services start
        names = [s.name for s in plan.for_host(host)]
        assert names.index("swift-rings-copy") < names.index("swift-storage-start")


def write_builder(directory, ring: str, devs: list[dict], *, replicas: float, devs_changed: bool = False) -> None:
    """A builder and ring file in the formats swift-ring-builder writes (pickled dict; gzip R1NG + JSON)."""
    with open(os.path.join(directory, f"{ring}.builder"), "wb") as f:
        pickle.dump({"part_power": 10, "replicas": replicas, "min_part_hours": 1, "devs_changed": devs_changed,
                     "devs": devs + [None]}, f, protocol=2)
    header = json.dumps({"devs": devs, "part_shift": 22, "replica_count": int(replicas), "byteorder": "little"})
    with gzip.open(os.path.join(directory, f"{ring}.ring.gz"), "wb") as f:
        f.write(struct.pack("!4sH", b"R1NG", 1) + struct.pack("!I", len(header)) + header.encode())


def guide_devs(port: int, last_ip: str = "10.0.0.52") -> list[dict]:
    return [{"id": i, "region": 1, "zone": zone, "ip": ip, "port": port, "device": device, "weight": 100.0}
            for i, (zone, ip, device) in enumerate(
                (z, ip, d) for z, ip in ((1, "10.0.0.51"), (2, last_ip)) for d in ("sdb", "sdc"))]


def run_rings_check(ctx: PlanContext, directory) -> int:
    check = step_named(swift_plan(ctx), "swift-rings", "controller").check
    check = check.replace("/etc/swift", str(directory)).replace("python3 -c", f"{shlex.quote(sys.executable)} -c", 1)
    check = re.sub(r"^python -c", f"{shlex.quote(sys.executable)} -c", check)
    return sh(check).returncode


def test_rings_check_passes_only_for_rings_that_match_the_inventory(tmp_path):
    ctx = context("debian-12")
    assert run_rings_check(ctx, tmp_path) == 1  # nothing built yet
    for ring, port in PORTS.items():
        write_builder(tmp_path, ring, guide_devs(port), replicas=3.0)
    assert run_rings_check(ctx, tmp_path) == 0
    write_builder(tmp_path, "object", guide_devs(6200, last_ip="10.0.0.99"), replicas=3.0)
    assert run_rings_check(ctx, tmp_path) == 1  # a node's IP changed
    write_builder(tmp_path, "object", guide_devs(6200), replicas=3.0, devs_changed=True)
    assert run_rings_check(ctx, tmp_path) == 1  # added but never rebalanced
    write_builder(tmp_path, "object", guide_devs(6200), replicas=2.0)
    assert run_rings_check(ctx, tmp_path) == 1  # wrong replica count
    write_builder(tmp_path, "object", guide_devs(6200), replicas=3.0)
    assert run_rings_check(ctx, tmp_path) == 0
    (tmp_path / "container.ring.gz").unlink()
    assert run_rings_check(ctx, tmp_path) == 1


# ------------------------------------------------------------------ finalize
def test_swift_conf_is_identical_on_every_node_and_its_hash_values_are_masked(ctx):
    plan = swift_plan(ctx)
    confs = {host: file_on(plan, host, "/etc/swift/swift.conf") for host in IPS}
    assert len(set(confs.values())) == 1
    conf = ini(confs["controller"])
    assert conf["swift-hash"]["swift_hash_path_suffix"] == ctx.secrets["swift_hash_path_suffix"]
    assert conf["swift-hash"]["swift_hash_path_prefix"] == ctx.secrets["swift_hash_path_prefix"]
    assert (conf["storage-policy:0"]["name"], conf["storage-policy:0"]["default"]) == ("Policy-0", "yes")
    spec = next(f for s in plan.for_host("object1") for f in s.files if f.path == "/etc/swift/swift.conf")
    assert (spec.mode, spec.owner) == (0o640, "root:swift")
    shown = plan.to_json(ctx.secrets)
    for name in ("swift_hash_path_suffix", "swift_hash_path_prefix", "swift_pass"):
        assert ctx.secrets[name] not in shown
    assert f"swift_hash_path_suffix = {MASK}" in shown


def test_controller_restarts_memcached_and_the_proxy(ctx):
    step = step_named(swift_plan(ctx), "swift-proxy-start", "controller")
    proxy = ctx.profile.swift_proxy_service
    assert step.commands[0] == "chown -R root:swift /etc/swift"
    assert "systemctl restart memcached" in step.commands and f"systemctl restart {proxy}" in step.commands
    assert f"systemctl is-active memcached {proxy}" in step.check
    for path in ("/etc/swift/proxy-server.conf", "/etc/swift/swift.conf", "/etc/swift/object.ring.gz"):
        assert path in step.commands[-1] and path in step.check


def test_storage_services_start_per_profile():
    debian = context("debian-12")
    step = step_named(swift_plan(debian), "swift-storage-start", "object2")
    units = " ".join(debian.profile.swift_storage_services)
    assert f"systemctl restart {units}" in step.commands and f"systemctl enable {units}" in step.commands
    assert "swift-account" in units and "swift-init" not in step.check
    ubuntu = step_named(swift_plan(context("ubuntu-18.04")), "swift-storage-start", "object2")
    assert any(c.startswith("swift-init all restart") for c in ubuntu.commands)
    assert "swift-init account-server" in ubuntu.check and " status" in ubuntu.check


def test_restart_record_notices_a_changed_config(tmp_path):
    conf = tmp_path / "proxy-server.conf"
    conf.write_text("bind_port = 8080\n")
    record, unchanged = finalize.checksum_stamp("swift-proxy", (str(conf),), stamp_dir=str(tmp_path / "stamps"))
    assert sh(unchanged).returncode != 0  # never restarted yet
    assert sh(record).returncode == 0
    assert sh(unchanged).returncode == 0
    conf.write_text("bind_port = 8081\n")
    assert sh(unchanged).returncode != 0


def test_units_active_needs_every_unit_running(tmp_path):
    fake = tmp_path / "systemctl"
    fake.write_text('#!/bin/sh\nshift\nfor u in "$@"; do grep -qx "$u" "$(dirname "$0")/up" && echo active '
                    '|| echo inactive; done\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    check = finalize.units_active(("memcached", "swift-proxy"))
    (tmp_path / "up").write_text("memcached\n")
    assert sh(check, env).returncode != 0
    (tmp_path / "up").write_text("memcached\nswift-proxy\n")
    assert sh(check, env).returncode == 0
    fake.write_text("#!/bin/sh\nexit 1\n")  # no answer at all is not "running"
    assert sh(check, env).returncode != 0


def test_both_profiles_give_the_same_steps():
    def names(os_name: str) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(s.phase, s.name, s.hosts) for s in swift_plan(context(os_name)).steps]

    assert names("ubuntu-18.04") == names("debian-12")


FAKE_OPENSTACK = '''#!{python}
"""Just enough of `openstack endpoint ...` to run the plan's endpoint commands: state in endpoints.json."""
import json, os, sys
path = os.path.join(os.path.dirname(sys.argv[0]), "endpoints.json")
rows = json.load(open(path)) if os.path.exists(path) else []
args = sys.argv[1:]
assert args[0] == "endpoint", args
def opt(name):
    return args[args.index(name) + 1]
if args[1] == "list":
    print("\\n".join(r["id"] for r in rows if r["interface"] == opt("--interface")))
elif args[1] == "create":
    rows.append({{"id": "e%d" % (len(rows) + 1), "interface": args[-2], "url": args[-1]}})
elif args[1] == "set":
    next(r for r in rows if r["id"] == args[-1])["url"] = opt("--url")
elif args[1] == "delete":
    rows = [r for r in rows if r["id"] not in args[2:]]
json.dump(rows, open(path, "w"))
'''


def endpoints_after(tmp_path, commands: list[str]) -> list[tuple[str, str]]:
    fake = tmp_path / "openstack"
    fake.write_text(FAKE_OPENSTACK.format(python=sys.executable))
    fake.chmod(0o755)
    (tmp_path / "admin-openrc").write_text("export OS_USERNAME=admin\n")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for command in commands:
        result = sh(command.replace("/root/admin-openrc", str(tmp_path / "admin-openrc")), env)
        assert result.returncode == 0, result.stderr
    return sorted((r["interface"], r["url"]) for r in json.loads((tmp_path / "endpoints.json").read_text()))


GUIDE_ENDPOINTS = [("admin", "http://controller:8080/v1"),
                   ("internal", "http://controller:8080/v1/AUTH_%(project_id)s"),
                   ("public", "http://controller:8080/v1/AUTH_%(project_id)s")]


def test_endpoint_commands_converge_when_run_again(tmp_path):
    commands = [c for c in step_named(swift_plan(context()), "swift-identity", "controller").commands
                if "openstack endpoint" in c]
    assert endpoints_after(tmp_path, commands) == GUIDE_ENDPOINTS
    assert endpoints_after(tmp_path, commands) == GUIDE_ENDPOINTS


def test_endpoint_commands_repair_a_wrong_url_and_drop_duplicates(tmp_path):
    (tmp_path / "endpoints.json").write_text(json.dumps([
        {"id": "old1", "interface": "public", "url": "http://controller:35357/v1"},
        {"id": "old2", "interface": "public", "url": "http://controller:8080/v1/AUTH_%(project_id)s"},
    ]))
    commands = [c for c in step_named(swift_plan(context()), "swift-identity", "controller").commands
                if "openstack endpoint" in c]
    assert endpoints_after(tmp_path, commands) == GUIDE_ENDPOINTS


# ------------------------------------------------------------------ the swift user's password
FAKE_OPENSTACK_USERS = '''#!{python}
"""Just enough of `openstack user show|set|create`: users and passwords in users.json."""
import json, os, sys
path = os.path.join(os.path.dirname(sys.argv[0]), "users.json")
users = json.load(open(path)) if os.path.exists(path) else {{}}
args = sys.argv[1:]
if args[0] != "user":  # role, service, endpoint: accepted, not modelled
    sys.exit(0)
name = args[-1]
if args[1] == "show":
    sys.exit(0 if name in users else 1)
if args[1] == "create" and name in users:
    sys.exit("Conflict occurred attempting to store user")
if args[1] in ("create", "set"):
    users[name] = args[args.index("--password") + 1]
json.dump(users, open(path, "w"))
'''


def _identity_host(tmp_path, users: dict[str, str]) -> dict:
    """A PATH with fake openstack (users.json) and mysql (the database already holds everything)."""
    fake = tmp_path / "openstack"
    fake.write_text(FAKE_OPENSTACK_USERS.format(python=sys.executable))
    mysql = tmp_path / "mysql"
    mysql.write_text(f"#!/bin/sh\necho '{swift_proxy.ENTITIES_DONE}'\n")
    for script in (fake, mysql):
        script.chmod(0o755)
    (tmp_path / "users.json").write_text(json.dumps(users))
    (tmp_path / "admin-openrc").write_text("export OS_USERNAME=admin\n")
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def _on_host(text: str, tmp_path) -> str:
    return (text.replace("/root/admin-openrc", str(tmp_path / "admin-openrc"))
            .replace(swift_proxy.STAMP_DIR, str(tmp_path / "stamps")))


def test_existing_swift_users_password_is_set_to_the_current_secret(tmp_path):
    ctx = context()
    env = _identity_host(tmp_path, {"swift": "password-of-an-older-secrets-yaml"})
    user_command = step_named(swift_plan(ctx), "swift-identity", "controller").commands[0]
    result = sh(_on_host(user_command, tmp_path), env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "users.json").read_text()) == {"swift": ctx.secrets["swift_pass"]}


def test_a_regenerated_swift_password_runs_the_identity_step_again(tmp_path):
    env = _identity_host(tmp_path, {})
    old = step_named(swift_plan(context()), "swift-identity", "controller")
    assert sh(_on_host(old.check, tmp_path), env).returncode != 0  # never run
    for command in old.commands:
        assert sh(_on_host(command, tmp_path), env).returncode == 0
    assert sh(_on_host(old.check, tmp_path), env).returncode == 0  # done: a re-run skips it

    regenerated = context()  # a new secrets.yaml for the same lab
    new = step_named(swift_plan(regenerated), "swift-identity", "controller")
    assert sh(_on_host(new.check, tmp_path), env).returncode != 0
    for command in new.commands:
        assert sh(_on_host(command, tmp_path), env).returncode == 0
    assert json.loads((tmp_path / "users.json").read_text()) == {"swift": regenerated.secrets["swift_pass"]}
    assert sh(_on_host(new.check, tmp_path), env).returncode == 0


def test_swift_identity_stamp_shows_no_secret(ctx):
    step = step_named(swift_plan(ctx), "swift-identity", "controller")
    shown = Plan((step,)).to_json(ctx.secrets)
    assert ctx.secrets["swift_pass"] not in shown and MASK in shown
    assert ctx.secrets["swift_pass"] not in step.check and ctx.secrets["swift_pass"] not in step.commands[-1]
