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
from identity_host import IdentityHost

from bootstrap.components import finalize, swift_proxy, swift_rings, swift_storage
from bootstrap.context import PlanContext, enable_units
from bootstrap.plan import Plan, Step
from labcore.errors import LabError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.secrets import MASK, generate

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


PUBLIC = "http://controller:8080/v1/AUTH_%(project_id)s"
GUIDE_ENDPOINT_COMMANDS = [
    ["endpoint", "create", "--region", "RegionOne", "object-store", "public", PUBLIC],
    ["endpoint", "create", "--region", "RegionOne", "object-store", "internal", PUBLIC],
    ["endpoint", "create", "--region", "RegionOne", "object-store", "admin", "http://controller:8080/v1"],
]


def test_swift_identity_sends_the_guides_commands_to_an_empty_keystone(ctx, tmp_path):
    step = step_named(swift_plan(ctx), "swift-identity", "controller")
    batch, _confirm, stamp = step.commands
    assert batch.startswith(". /root/admin-openrc && ")
    assert stamp.endswith(f"> {swift_proxy.IDENTITY_STAMP}")

    sent = IdentityHost(tmp_path).run(step)

    assert sent == [
        ["user", "create", "--domain", "default", "--password", ctx.secrets["swift_pass"], "swift"],
        ["role", "add", "--project", "service", "--user", "swift", "admin"],
        ["service", "create", "--name", "swift", "--description", "OpenStack Object Storage", "object-store"],
        *GUIDE_ENDPOINT_COMMANDS,
    ]
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
    assert debian.commands == (enable_units("rsync"), "systemctl restart rsync")
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
RECORD = '#!/bin/sh\necho "$(basename "$0") $*" >> "$(dirname "$0")/calls"\n'


def ring_commands(plan: Plan, tmp_path) -> list[str]:
    """What the ring step runs, by a fake swift-ring-builder and rm that record their arguments
    (the three rings are built side by side: their lines interleave, each ring's in order)."""
    for tool in ("swift-ring-builder", "rm"):
        (tmp_path / tool).write_text(RECORD)
        (tmp_path / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    for command in step_named(plan, "swift-rings", "controller").commands:
        assert sh(command, env).returncode == 0
    return (tmp_path / "calls").read_text().splitlines()


def test_rings_are_built_on_the_controller_only(ctx):
    step = step_named(swift_plan(ctx), "swift-rings", "controller")
    assert (step.phase, step.hosts) == ("swift-rings", ("controller",))


@pytest.mark.parametrize("volumes, expected_replicas", [(("sdb", "sdc"), 3), (("sdb",), 2)])
def test_rings_use_part_power_10_and_replicas_up_to_the_device_count(volumes, expected_replicas, tmp_path):
    commands = ring_commands(swift_plan(context(volumes=volumes)), tmp_path)
    for ring in PORTS:
        assert f"swift-ring-builder /etc/swift/{ring}.builder create 10 {expected_replicas} 1" in commands


def test_a_lab_without_swift_devices_is_refused_with_advice():
    with pytest.raises(LabError, match="volumes"):
        swift_plan(context(volumes=()))


def test_rings_get_one_add_per_device_with_ip_port_and_zone(ctx, tmp_path):
    commands = ring_commands(swift_plan(ctx), tmp_path)
    for ring, port in PORTS.items():
        adds = [c for c in commands if c.startswith(f"swift-ring-builder /etc/swift/{ring}.builder add ")]
        assert adds == [
            f"swift-ring-builder /etc/swift/{ring}.builder add --region 1 --zone {zone} --ip {ip} "
            f"--port {port} --device {device} --weight 100"
            for zone, ip in ((1, "10.0.0.51"), (2, "10.0.0.52")) for device in ("sdb", "sdc")]


def test_each_ring_is_created_then_filled_then_rebalanced(ctx, tmp_path):
    commands = ring_commands(swift_plan(ctx), tmp_path)
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
    assert f"systemctl restart {units}" in step.commands
    assert enable_units(*debian.profile.swift_storage_services) in step.commands
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


def _endpoint_ids(public: str = "", internal: str = "", admin: str = "") -> list[tuple[str, str]]:
    return [(rf"e.interface = '{name}'", ids) for name, ids in (("public", public), ("internal", internal),
                                                              ("admin", admin))]


def host_secret(step: Step) -> str:
    return re.search(r"--password (\w+) swift", step.commands[0]).group(1)


def test_endpoint_lines_repair_a_wrong_url_and_drop_duplicates(tmp_path):
    step = step_named(swift_plan(context()), "swift-identity", "controller")
    host = IdentityHost(tmp_path, [(r"name = 'swift'", "1"), (r"FROM service WHERE", "1"),
                                   *_endpoint_ids(public="old1\nold2", internal="e2")])

    sent = host.run(step)

    assert sent == [["user", "set", "--password", host_secret(step), "swift"],
                    ["role", "add", "--project", "service", "--user", "swift", "admin"],
                    ["endpoint", "set", "--url", PUBLIC, "old1"], ["endpoint", "delete", "old2"],
                    ["endpoint", "set", "--url", PUBLIC, "e2"],
                    GUIDE_ENDPOINT_COMMANDS[2]]  # no admin endpoint yet: created
    assert ["service", "create"] not in [argv[:2] for argv in sent]  # it exists: not made twice


def test_existing_swift_users_password_is_set_to_the_current_secret(tmp_path):
    ctx = context()
    step = step_named(swift_plan(ctx), "swift-identity", "controller")
    sent = IdentityHost(tmp_path, [(r"local_user WHERE domain_id = 'default' AND name = 'swift'", "1")]).run(step)
    assert sent[0] == ["user", "set", "--password", ctx.secrets["swift_pass"], "swift"]


def test_a_failing_database_query_asks_for_the_create_and_the_step_fails(tmp_path):
    """mysql down: the batch is asked to create (its error will say why), and the step's
    own check after it fails, so the step is reported failed instead of done."""
    step = step_named(swift_plan(context()), "swift-identity", "controller")
    host = IdentityHost(tmp_path, [(r".", None)])
    assert host.run(step)[0][:2] == ["user", "create"]
    assert host.sh(step.commands[1]).returncode != 0
    assert "not all in keystone" in host.sh(step.commands[1]).stderr


def test_a_regenerated_swift_password_runs_the_identity_step_again(tmp_path):
    host = IdentityHost(tmp_path)
    old = step_named(swift_plan(context()), "swift-identity", "controller")
    assert host.sh(old.check).returncode != 0  # never run
    host.answer([(r"CONCAT_WS", swift_proxy.ENTITIES_DONE)])  # what Keystone holds after the batch
    assert host.run(old) and all(host.sh(c).returncode == 0 for c in old.commands)
    assert host.sh(old.check).returncode == 0  # done: a re-run skips it

    regenerated = context()  # a new secrets.yaml for the same lab
    new = step_named(swift_plan(regenerated), "swift-identity", "controller")
    assert host.sh(new.check).returncode != 0
    host.answer([(r"CONCAT_WS", swift_proxy.ENTITIES_DONE), (r"name = 'swift'", "1")])
    assert host.run(new)[0] == ["user", "set", "--password", regenerated.secrets["swift_pass"], "swift"]
    assert host.sh(new.check).returncode == 0


def test_swift_identity_stamp_shows_no_secret(ctx):
    step = step_named(swift_plan(ctx), "swift-identity", "controller")
    shown = Plan((step,)).to_json(ctx.secrets)
    assert ctx.secrets["swift_pass"] not in shown and MASK in shown
    assert ctx.secrets["swift_pass"] not in step.check and ctx.secrets["swift_pass"] not in step.commands[-1]


@pytest.mark.parametrize("rebalance_exit, step_ok", [(1, True), (2, False)])
def test_ring_step_fails_when_any_ring_fails_and_accepts_rebalance_warnings(tmp_path, rebalance_exit, step_ok):
    """Exit 1 of rebalance is swift-ring-builder's warning (the ring is written); anything
    else in any of the three rings built side by side fails the step."""
    (tmp_path / "swift-ring-builder").write_text(
        f'#!/bin/sh\ncase "$*" in *object.builder\\ rebalance*) exit {rebalance_exit};; esac\nexit 0\n')
    (tmp_path / "swift-ring-builder").chmod(0o755)
    (tmp_path / "rm").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "rm").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    (command,) = step_named(swift_plan(context()), "swift-rings", "controller").commands
    assert (sh(command, env).returncode == 0) is step_ok
