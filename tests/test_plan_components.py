"""The plan against the guide: environment and controller services; both profiles; no SSH.

Keystone's steps are in test_plan_keystone.py."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict

import pytest
from plan_fixtures import (  # noqa: F401 - planned is a fixture
    actions,
    context,
    file_on,
    fresh_commands,
    inventory,
    plan_for,
    planned,
    rendered,
    step_named,
)

from bootstrap.actions import LINE, Command, Packages, Service, Sql
from bootstrap.plan import PHASE_NEEDS, PHASES, phases_needed
from bootstrap.planner import build_plan
from bootstrap.render import POLICY_RC_D, starts_deferred
from labcore.secrets import generate


def all_text(plan) -> str:
    return json.dumps([[asdict(a) for a in s.actions] for s in plan.steps])


def test_port_35357_appears_nowhere_in_the_plan(planned):
    ctx, plan = planned
    assert "35357" not in all_text(plan)
    assert "35357" not in plan.to_json(ctx.secrets)


def test_no_secret_value_is_shown_by_lab_plan_json(planned):
    ctx, plan = planned
    shown = plan.to_json(ctx.secrets)
    for name, value in ctx.secrets.values.items():
        assert value not in shown, name
    assert "********" in shown
    assert ctx.secrets["admin_pass"] in all_text(plan)  # the hosts do get it


def test_both_profiles_plan_the_same_steps():
    names = [[(s.phase, s.name, s.hosts) for s in plan_for(os)[1].steps] for os in ("ubuntu-18.04", "debian-12")]
    assert names[0] == names[1]


def test_phases_follow_the_guides_order(planned):
    _, plan = planned
    assert [p for p, _ in plan.phases()] == ["base", "packages", "controller-services", "service-packages",
                                             "front-door", "keystone", "dashboard", "swift-proxy", "swift-storage", "swift-rings",
                                             "finalize"]


def test_a_phase_only_needs_phases_before_it_and_finalize_needs_them_all():
    assert PHASES[0] == "base" and PHASE_NEEDS["base"] == ()
    for number, phase in enumerate(PHASES):
        assert phase == "base" or "base" in phases_needed(phase), phase
        assert all(PHASES.index(need) < number for need in PHASE_NEEDS[phase]), phase
    assert phases_needed("finalize") == set(PHASES) - {"finalize"}


def test_what_a_phase_configures_was_installed_by_a_phase_it_needs(planned):
    """The phases that run side by side on the controller: its services phase starts while
    the service packages are unpacked, the rings are built while Keystone starts."""
    ctx, plan = planned
    profile = ctx.profile
    installed_by = {"packages": set(profile.environment_packages("controller")),
                    "service-packages": set(profile.service_packages("controller"))}

    def available(phase):
        return set().union(*(installed_by.get(p, set()) for p in phases_needed(phase)))

    services = (*profile.database_packages, *profile.messaging_packages, *profile.memcached_packages,
                *profile.etcd_packages)
    assert set(services) <= available("controller-services")
    assert "service-packages" not in phases_needed("controller-services")
    assert {*profile.keystone_packages, *profile.client_packages} <= available("keystone")
    assert "swift" in available("swift-rings") and "keystone" not in phases_needed("swift-rings")
    assert {"swift", "swift-proxy"} <= available("finalize")


def test_cloud_archive_rocky_only_on_ubuntu_and_apt_get_update_comes_first():
    sent = step_named(plan_for("ubuntu-18.04")[1], "package-archive", "controller").actions[0].run
    ubuntu = [c.split(" && ", 1)[-1] for c in sent]  # without the lock wait before each apt command
    debian = step_named(plan_for("debian-12")[1], "package-archive", "controller").actions[0].run
    assert "add-apt-repository -y cloud-archive:rocky" in ubuntu
    assert ubuntu.index("apt-get update") < ubuntu.index(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y software-properties-common")
    assert debian[0].endswith(" && apt-get -o DPkg::Lock::Timeout=300 update")
    assert "cloud-archive" not in all_text(plan_for("debian-12")[1])


def test_each_host_installs_its_packages_in_two_apt_gets_environment_first(planned):
    """And the controller a third, openstack-dashboard, after the dashboard's settings (its
    postinst compresses Horizon's files for them)."""
    ctx, plan = planned
    for host in ("controller", "object1", "object2"):
        installs = [(s.phase, a) for s in plan.for_host(host) for a in actions(s, Packages)]
        dashboard = ["dashboard"] if host == "controller" else []
        assert [phase for phase, _ in installs] == ["packages", "service-packages", *dashboard], installs
        role = "controller" if host == "controller" else "object"
        named = [n for _, a in installs for n in a.names]
        assert sorted(named) == sorted(ctx.profile.packages_for(role))  # each package once
        assert installs[0][1].names == ctx.profile.environment_packages(role)
        assert installs[1][1].debconf == ctx.profile.debconf_selections and not installs[0][1].debconf
    assert "chrony" in ctx.profile.environment_packages("object")


def test_python_packages_follow_the_profile():
    ubuntu = context("ubuntu-18.04").profile.packages_for("controller")
    debian = context("debian-12").profile.packages_for("controller")
    assert "python-openstackclient" in ubuntu and "python-pymysql" in ubuntu
    assert "python3-openstackclient" in debian and "python3-pymysql" in debian


def test_controller_follows_amazon_time_sync_on_aws_and_allows_the_subnet():
    conf = file_on(plan_for("ubuntu-18.04")[1], "controller", "/etc/chrony/chrony.conf")
    assert "server 169.254.169.123 iburst" in conf and "allow 10.0.0.0/24" in conf and "pool" not in conf


def test_other_nodes_follow_the_controller_only(planned):
    _, plan = planned
    for host in ("object1", "object2"):
        conf = file_on(plan, host, "/etc/chrony/chrony.conf")
        assert re.findall(r"^(server|pool) .*$", conf, re.M) == ["server"]
        assert "server controller iburst" in conf


def test_on_the_twin_chrony_never_sets_the_clock_and_the_controller_serves_its_own():
    plan = plan_for("debian-12")[1]
    assert "local stratum 8" in file_on(plan, "controller", "/etc/chrony/chrony.conf")
    for host in ("controller", "object1"):
        assert "-x" in file_on(plan, host, "/etc/default/chrony")
        assert "ConditionCapability=" in file_on(plan, host, "/etc/systemd/system/chrony.service.d/lab.conf")
        (service,) = actions(step_named(plan, "chrony-controller" if host == "controller" else
                                        "chrony-follow-controller", host), Service)
        assert service.daemon_reload  # the drop-in is read only after a daemon-reload
    aws = plan_for("ubuntu-18.04")[1]
    assert not [f for s in aws.steps for f in s.files if f.path == "/etc/default/chrony"]


def test_mariadb_listens_on_the_controllers_management_ip(planned):
    _, plan = planned
    cnf = file_on(plan, "controller", "/etc/mysql/mariadb.conf.d/99-openstack.cnf")
    assert "bind-address = 10.0.0.11" in cnf
    for line in ("default-storage-engine = innodb", "innodb_file_per_table = on", "max_connections = 4096",
                 "collation-server = utf8_general_ci", "character-set-server = utf8"):
        assert line in cnf


@pytest.mark.parametrize("os_name, accounts", [("ubuntu-18.04", "mysql.user"), ("debian-12", "mysql.global_priv")])
def test_mariadb_is_secured_with_sql_on_the_table_its_version_keeps_accounts_in(os_name, accounts):
    (sql,) = actions(step_named(plan_for(os_name)[1], "mariadb-secure", "controller"), Sql)
    assert "DROP DATABASE IF EXISTS test" in sql.statement and f"DELETE FROM {accounts} WHERE User='';" in sql.statement
    assert sql.expect == "0" and "information_schema.schemata" in sql.done.sql


def test_rabbitmq_user_openstack_gets_all_permissions(planned):
    ctx, plan = planned
    step = step_named(plan, "rabbitmq-user", "controller")
    text = " ".join(c for a in actions(step, Command) for c in a.run)
    assert f"add_user openstack {ctx.secrets['rabbit_pass']}" in text
    assert 'set_permissions openstack ".*" ".*" ".*"' in text
    assert actions(step, Service)[0].start_only


def test_memcached_and_etcd_listen_on_the_controller_ip(planned):
    _, plan = planned
    assert "-l 10.0.0.11" in file_on(plan, "controller", "/etc/memcached.conf")
    etcd = file_on(plan, "controller", "/etc/default/etcd")
    assert 'ETCD_INITIAL_CLUSTER="controller=http://10.0.0.11:2380"' in etcd
    assert 'ETCD_LISTEN_CLIENT_URLS="http://10.0.0.11:2379"' in etcd
    assert 'ETCD_ADVERTISE_CLIENT_URLS="http://10.0.0.11:2379"' in etcd


def test_lab_plan_says_each_action_in_one_line_of_at_most_200_characters(planned):
    _, plan = planned
    lines = [a.says() for s in plan.steps for a in s.actions]
    assert all(len(line) <= LINE and "\n" not in line for line in lines)
    assert "create the openstack user `myuser` unless it exists; set its password again when the secret " \
           "changes" in lines
    assert "install packages chrony" in lines and "write /etc/chrony/chrony.conf (0644 root:root)" in lines


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_every_fact_and_command_of_the_whole_plan_is_posix_sh(os_name):
    """Hosts run steps with sh (dash on Debian and Ubuntu): a quoting slip fails here, not on a host."""
    for step in plan_for(os_name)[1].steps:
        for text in rendered(step):
            result = subprocess.run(["dash", "-n", "-c", text], capture_output=True, text=True)
            assert result.returncode == 0, (step.name, text, result.stderr)


def test_no_sql_is_rewritten_to_fit_the_shell(planned):
    """The statement given is the statement sent (database.py once collapsed double spaces in it)."""
    _, plan = planned
    for name in ("mariadb-secure", "keystone-database"):
        (sql,) = actions(step_named(plan, name, "controller"), Sql)
        (command,) = fresh_commands(step_named(plan, name, "controller"))
        sent = subprocess.run(["sh", "-c", f"printf '%s' {command.split(' -e ', 1)[1]}"], capture_output=True,
                              text=True).stdout
        assert sent == sql.statement


def test_package_installs_defer_service_starts_and_always_clean_up(tmp_path):
    """While apt runs, policy-rc.d says 101 (no service starts); afterwards it is gone, even
    when apt fails; a policy-rc.d of the host's own is left alone."""
    from bootstrap.render import NO_LEFTOVER_POLICY

    policy = tmp_path / "policy-rc.d"

    def run(command: str) -> subprocess.CompletedProcess:
        text = starts_deferred(command).replace(POLICY_RC_D, str(policy))
        return subprocess.run(["sh", "-c", text], capture_output=True, text=True)

    during = run(f"{policy} start; echo denied=$?; exit 3")
    assert during.returncode == 3 and "denied=101" in during.stdout
    assert not policy.exists()

    policy.write_text("#!/bin/sh\n# openstack-ec2-lab: services start once configured\nexit 101\n")  # a killed run's
    check = NO_LEFTOVER_POLICY.replace(POLICY_RC_D, str(policy))
    assert subprocess.run(["sh", "-c", check]).returncode != 0  # so the packages are not done
    assert run("true").returncode == 0 and not policy.exists()
    assert subprocess.run(["sh", "-c", check]).returncode == 0

    policy.write_text("#!/bin/sh\nexit 0\n")  # the host's own
    assert run("true").returncode == 0 and policy.read_text() == "#!/bin/sh\nexit 0\n"


def test_the_whole_plan_builds_for_a_lab_of_one_storage_node():
    inv = inventory("debian-12")
    one = inv.model_copy(update={"nodes": inv.nodes[:2]})
    plan = build_plan(one, generate())
    assert {h for s in plan.steps for h in s.hosts} == {"controller", "object1"}
