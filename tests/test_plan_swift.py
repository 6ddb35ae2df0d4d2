"""The Swift half of the plan against the guide: proxy, storage nodes, finalize. No SSH.

The rings are in test_plan_swift_rings.py."""

from __future__ import annotations


import pytest
from identity_host import IdentityHost
from plan_fixtures import (  # noqa: F401 - planned is a fixture
    IPS,
    PORTS,
    actions,
    file_on,
    fresh_commands,
    ini,
    plan_for,
    planned,
    rendered,
    sh,
    step_named,
)

from bootstrap.actions import Command, OpenStack, Service, Wait
from bootstrap.components import finalize
from bootstrap.decide import facts_for
from bootstrap.plan import Plan
from bootstrap.render import checksum_record, stamp_unchanged
from labcore.secrets import MASK

GUIDE_PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging cache container_sync bulk ratelimit authtoken "
                  "keystoneauth container-quotas account-quotas slo dlo versioned_writes proxy-logging proxy-server")
PUBLIC = "https://10.0.0.11/v1/AUTH_%(project_id)s"  # the front door's (labcore/front_door.py)
INTERNAL = "http://controller:8080/v1/AUTH_%(project_id)s"
GUIDE_ENDPOINT_COMMANDS = [
    ["endpoint", "create", "--region", "RegionOne", "object-store", "public", PUBLIC],
    ["endpoint", "create", "--region", "RegionOne", "object-store", "internal", INTERNAL],
    ["endpoint", "create", "--region", "RegionOne", "object-store", "admin", "http://controller:8080/v1"],
]


# ------------------------------------------------------------------ proxy
@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_proxy_listens_on_8080_with_the_guides_keystone_pipeline_when_asked(os_name):
    conf = ini(file_on(plan_for(os_name, swift_pipeline="guide")[1], "controller", "/etc/swift/proxy-server.conf"))
    assert (conf["DEFAULT"]["bind_port"], conf["DEFAULT"]["user"], conf["DEFAULT"]["swift_dir"]) == (
        "8080", "swift", "/etc/swift")
    assert conf["pipeline:main"]["pipeline"] == GUIDE_PIPELINE
    assert conf["app:proxy-server"]["use"] == "egg:swift#proxy"
    assert conf["app:proxy-server"]["account_autocreate"] == "True"
    assert not conf.has_section("filter:tempauth")
    for name in set(GUIDE_PIPELINE.split()) - {"proxy-server"}:
        section = conf[f"filter:{name}"]
        assert section.get("use", "").startswith("egg:swift#") or "paste.filter_factory" in section, name
    assert conf["filter:proxy-logging"]["use"] == "egg:swift#proxy_logging"


def test_proxy_config_is_readable_by_swift_only(planned):
    spec = step_named(planned[1], "swift-proxy-config", "controller").files[0]
    assert (spec.path, spec.mode, spec.owner) == ("/etc/swift/proxy-server.conf", 0o640, "root:swift")


def test_keystoneauth_lets_the_demo_users_myrole_in():
    conf = ini(file_on(plan_for()[1], "controller", "/etc/swift/proxy-server.conf"))
    roles = conf["filter:keystoneauth"]["operator_roles"].split(",")
    assert "admin" in roles and "myrole" in roles


def test_authtoken_uses_keystone_on_5000_and_35357_appears_nowhere(planned):
    ctx, plan = planned
    token = ini(file_on(plan, "controller", "/etc/swift/proxy-server.conf"))["filter:authtoken"]
    assert token["www_authenticate_uri"] == token["auth_url"] == "http://controller:5000"
    assert token["memcached_servers"] == "controller:11211"
    assert (token["auth_type"], token["project_name"], token["username"]) == ("password", "service", "swift")
    assert token["project_domain_id"] == token["user_domain_id"] == "default"
    assert token["password"] == ctx.secrets["swift_pass"] and token["delay_auth_decision"] == "True"
    assert "35357" not in plan.to_json(ctx.secrets)


def test_swift_identity_sends_the_guides_commands_to_an_empty_keystone(planned, tmp_path):
    ctx, plan = planned
    step = step_named(plan, "swift-identity", "controller")
    host = IdentityHost(tmp_path)

    host.install(step, tmp_path, ctx.secrets)

    assert host.sent() == [
        ["user", "create", "--domain", "default", "--password", ctx.secrets["swift_pass"], "swift"],
        ["role", "add", "--project", "service", "--user", "swift", "admin"],
        ["service", "create", "--name", "swift", "--description", "OpenStack Object Storage", "object-store"],
        *GUIDE_ENDPOINT_COMMANDS,
    ]


def test_a_second_swift_identity_sends_nothing_and_a_new_password_is_set_once(tmp_path):
    ctx, plan = plan_for()
    host = IdentityHost(tmp_path, [(r"e.url <>", "0"), (r".", "1")])  # Keystone has every entity, rightly
    step = step_named(plan, "swift-identity", "controller")
    assert host.install(step, tmp_path, ctx.secrets).ok
    assert host.sent() == [["user", "set", "--password", ctx.secrets["swift_pass"], "swift"]]
    assert host.install(step, tmp_path, ctx.secrets).counts()["changed"] == 0 and host.sent() == []

    regenerated, new_plan = plan_for()  # a new secrets.yaml for the same lab
    host.install(step_named(new_plan, "swift-identity", "controller"), tmp_path, regenerated.secrets)
    assert host.sent() == [["user", "set", "--password", regenerated.secrets["swift_pass"], "swift"]]


def test_a_failing_database_query_asks_for_the_create_and_the_step_fails(tmp_path):
    """mysql down: the command is sent (its error would say why), and the confirmation after
    it fails the step instead of calling it done."""
    ctx, plan = plan_for()
    host = IdentityHost(tmp_path, [(r".", None)])
    report = host.install(step_named(plan, "swift-identity", "controller"), tmp_path, ctx.secrets)
    assert host.sent()[0][:2] == ["user", "create"]
    assert not report.ok and "not in keystone's database after the openstack command" in report.failure.tail[-1]


def test_swift_identity_never_shows_its_password(planned):
    ctx, plan = planned
    step = step_named(plan, "swift-identity", "controller")
    shown = Plan((step,)).to_json(ctx.secrets)
    assert ctx.secrets["swift_pass"] not in shown and MASK in shown
    asked = [f.command() for a in step.actions for f in facts_for(a)]
    assert any("openstack-user-swift.sha256" in text for text in asked)  # the stamp holds a sha256 ...
    assert all(ctx.secrets["swift_pass"] not in text for text in asked)  # ... never the password


def test_no_fact_of_the_swift_steps_calls_the_openstack_cli(planned):
    for step in planned[1].steps:
        if step.phase in ("swift-proxy", "swift-storage", "swift-rings", "finalize"):
            assert not any(text.startswith("openstack ") for text in rendered(step)), step.name


# ------------------------------------------------------------------ storage nodes
@pytest.mark.parametrize("host", ["object1", "object2"])
def test_storage_servers_bind_the_nodes_ip_on_the_guides_ports(planned, host):
    plan = planned[1]
    for server, port in PORTS.items():
        conf = ini(file_on(plan, host, f"/etc/swift/{server}-server.conf"))
        default = conf["DEFAULT"]
        assert (default["bind_ip"], default["bind_port"]) == (IPS[host], str(port))
        assert (default["user"], default["swift_dir"], default["devices"], default["mount_check"]) == (
            "swift", "/etc/swift", "/srv/node", "True")
        assert conf["pipeline:main"]["pipeline"] == f"healthcheck recon {server}-server"
        assert conf[f"app:{server}-server"]["use"] == f"egg:swift#{server}"
        assert conf["filter:recon"]["recon_cache_path"] == "/var/cache/swift"
        assert conf.has_section(f"{server}-replicator") and conf.has_section(f"{server}-auditor")
    assert ini(file_on(plan, host, "/etc/swift/object-server.conf"))["filter:recon"]["recon_lock_path"] == "/var/lock"


def test_storage_configs_are_not_planned_on_the_controller(planned):
    paths = {f.path for s in planned[1].for_host("controller") for f in s.files}
    assert not paths & {"/etc/swift/account-server.conf", "/etc/rsyncd.conf"}


@pytest.mark.parametrize("host", ["object1", "object2"])
def test_rsyncd_serves_the_three_modules_on_the_nodes_ip(planned, host):
    text = file_on(planned[1], host, "/etc/rsyncd.conf")
    assert f"address = {IPS[host]}\n" in text and "uid = swift\ngid = swift\n" in text
    for module in PORTS:
        assert (f"[{module}]\nmax connections = 2\npath = /srv/node/\nread only = False\n"
                f"lock file = /var/lock/{module}.lock\n") in text


def test_rsync_is_enabled_the_guides_way_on_ubuntu_and_by_systemd_on_debian():
    ubuntu = step_named(plan_for("ubuntu-18.04")[1], "swift-rsync", "object1")
    assert "RSYNC_ENABLE=true" in actions(ubuntu, Command)[0].run[0]
    debian = step_named(plan_for("debian-12")[1], "swift-rsync", "object1")
    assert not actions(debian, Command)
    for step in (ubuntu, debian):
        assert actions(step, Service)[0].units == ("rsync",) and actions(step, Service)[0].enable


def test_storage_directories_belong_to_swift_and_the_recon_cache_check_survives_debians_units(planned):
    """Debian's swift units (CacheDirectory=swift) make /var/cache/swift 755 swift:swift at each
    start; a check demanding the guide's 775 failed on every later `lab install`."""
    (command,) = actions(step_named(planned[1], "swift-storage-config", "object1"), Command)
    assert {"chown -R swift:swift /srv/node", "chown -R root:swift /var/cache/swift",
            "chmod -R 775 /var/cache/swift"} <= set(command.run)
    assert "runuser -u swift -- test -w /var/cache/swift" in command.unless and "775" not in command.unless


# ------------------------------------------------------------------ finalize
def test_swift_conf_is_identical_on_every_node_and_its_hash_values_are_masked(planned):
    ctx, plan = planned
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


def test_the_proxy_and_memcached_restart_when_what_they_read_changes(planned):
    ctx, plan = planned
    (service,) = actions(step_named(plan, "swift-proxy-start", "controller"), Service)
    assert service.units == ("memcached", ctx.profile.swift_proxy_service)
    assert service.watch == ("/etc/swift/proxy-server.conf", "/etc/swift/swift.conf",
                             "/etc/swift/container-sync-realms.conf", "/etc/swift/account.ring.gz",
                             "/etc/swift/container.ring.gz", "/etc/swift/object.ring.gz")
    assert service.stamp == "/var/lib/lab/swift-proxy.sha256"  # the stamp today's labs already have


def test_storage_services_start_per_profile():
    debian = plan_for("debian-12")
    (service,) = actions(step_named(debian[1], "swift-storage-start", "object2"), Service)
    assert service.units == debian[0].profile.swift_storage_services and service.stamp.endswith("swift-storage.sha256")
    ubuntu = step_named(plan_for("ubuntu-18.04")[1], "swift-storage-start", "object2")
    (start,) = [a for a in actions(ubuntu, Command) if "swift-init" in a.run[0]]
    assert start.run[0].startswith("swift-init all restart || swift-init account-server")
    assert "swift-init account-server" in start.unless and " status" in start.unless


def test_the_restart_record_notices_a_changed_config(tmp_path):
    conf = tmp_path / "proxy-server.conf"
    conf.write_text("bind_port = 8080\n")
    stamp = str(tmp_path / "stamps" / "swift-proxy.sha256")
    assert sh(stamp_unchanged(stamp, (str(conf),))).returncode != 0  # never restarted yet
    assert sh(checksum_record(stamp, (str(conf),))).returncode == 0
    assert sh(stamp_unchanged(stamp, (str(conf),))).returncode == 0
    conf.write_text("bind_port = 8081\n")
    assert sh(stamp_unchanged(stamp, (str(conf),))).returncode != 0


def test_the_install_ends_when_the_cloud_serves_after_every_storage_node_started(planned):
    plan = planned[1]
    step = step_named(plan, "cloud-ready", "controller")
    (wait,) = actions(step, Wait)
    assert step.after == ("object1", "object2") and step.phase == "finalize"
    assert plan.ordered().index(step) > plan.ordered().index(step_named(plan, "swift-storage-start", "object1"))
    assert wait.judge == "cloud-ready" and not wait.read_only and wait.seconds == finalize.CLOUD_READY_SECONDS
    assert wait.probe[:4] == ("python3", "/usr/local/lib/openstack-ec2-lab/cloud_ready.py", "/root/demo-openrc",
                              "http://controller:8080")
    servers = [f"{ip}:{port}" for ip in ("10.0.0.51", "10.0.0.52") for port in (6200, 6201, 6202)]
    assert wait.probe[4] == '["' + '", "'.join(servers) + '"]'


def test_both_profiles_give_the_same_swift_steps():
    def names(os_name: str):
        return [(s.phase, s.name, s.hosts) for s in plan_for(os_name)[1].steps if "swift" in s.name]

    assert names("ubuntu-18.04") == names("debian-12")


def test_openstack_actions_of_a_step_go_to_one_process(planned):
    step = step_named(planned[1], "swift-identity", "controller")
    assert len(actions(step, OpenStack)) == 6
    batches = [c for c in fresh_commands(step) if "openstack_batch.py" in c]
    assert len(batches) == 1 and batches[0].startswith(". /root/admin-openrc && ")
