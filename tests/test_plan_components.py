"""The plan against the guide: environment, controller services, keystone; both profiles; no SSH."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from identity_host import IdentityHost
from plan_fixtures import context, file_on, inventory, step_named

from bootstrap.components import openstack_batch
from bootstrap.components.keystone import openrc
from bootstrap.plan import PHASE_NEEDS, PHASES, phases_needed
from bootstrap.planner import build_plan
from labcore.secrets import generate


@pytest.fixture(params=["ubuntu-18.04", "debian-12"])
def planned(request):
    ctx = context(request.param)
    return ctx, build_plan(ctx.inventory, ctx.secrets)


def sql_of(command: str) -> str:
    """The SQL a `mysql -e '...'` command sends, as the shell would pass it."""
    return " ".join(shlex.split(command))


def all_text(plan, secrets=None) -> str:
    return json.dumps([{"check": s.check, "commands": s.commands, "files": [f.content for f in s.files]}
                       for s in plan.steps])


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
    names = [[(s.phase, s.name, s.hosts) for s in build_plan(context(os).inventory, generate()).steps]
             for os in ("ubuntu-18.04", "debian-12")]
    assert names[0] == names[1]


def test_phases_follow_the_guides_order(planned):
    _, plan = planned
    assert [p for p, _ in plan.phases()] == ["base", "packages", "controller-services", "service-packages",
                                             "keystone", "swift-proxy", "swift-storage", "swift-rings", "finalize"]


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


def test_cloud_archive_rocky_only_on_ubuntu():
    ubuntu = all_text(build_plan(inventory("ubuntu-18.04"), generate()))
    debian = all_text(build_plan(inventory("debian-12"), generate()))
    assert "add-apt-repository -y cloud-archive:rocky" in ubuntu
    assert "cloud-archive" not in debian


def test_each_host_installs_its_packages_in_two_apt_calls_environment_first(planned):
    ctx, plan = planned
    for host in ("controller", "object1", "object2"):
        installs = [(s.phase, c) for s in plan.for_host(host) for c in s.commands if "apt-get install" in c
                    and "software-properties-common" not in c]
        assert [phase for phase, _ in installs] == ["packages", "service-packages"], installs
        role = "controller" if host == "controller" else "object"
        for package in ctx.profile.packages_for(role):
            assert sum(f" {package} " in f"{command} " or f" {package};" in command
                       for _, command in installs) == 1, package
        for package in ctx.profile.environment_packages(role):
            assert f" {package}" in installs[0][1]
    assert "chrony" in ctx.profile.environment_packages("object")


def test_python_packages_follow_the_profile():
    ubuntu = context("ubuntu-18.04").profile.packages_for("controller")
    debian = context("debian-12").profile.packages_for("controller")
    assert "python-openstackclient" in ubuntu and "python-pymysql" in ubuntu
    assert "python3-openstackclient" in debian and "python3-pymysql" in debian


def test_controller_follows_amazon_time_sync_on_aws_and_allows_the_subnet():
    plan = build_plan(inventory("ubuntu-18.04"), generate())
    conf = file_on(plan, "controller", "/etc/chrony/chrony.conf")
    assert "server 169.254.169.123 iburst" in conf
    assert "allow 10.0.0.0/24" in conf
    assert "pool" not in conf


def test_other_nodes_follow_the_controller_only(planned):
    _, plan = planned
    for host in ("object1", "object2"):
        conf = file_on(plan, host, "/etc/chrony/chrony.conf")
        assert re.findall(r"^(server|pool) .*$", conf, re.M) == ["server"]
        assert "server controller iburst" in conf


def test_on_the_twin_chrony_never_sets_the_clock_and_the_controller_serves_its_own():
    plan = build_plan(inventory("debian-12"), generate())
    conf = file_on(plan, "controller", "/etc/chrony/chrony.conf")
    assert "local stratum 8" in conf and "169.254.169.123" not in conf
    for host in ("controller", "object1"):
        assert "-x" in file_on(plan, host, "/etc/default/chrony")
        assert "ConditionCapability=" in file_on(plan, host, "/etc/systemd/system/chrony.service.d/lab.conf")
    aws = build_plan(inventory("ubuntu-18.04"), generate())
    assert not [f for s in aws.steps for f in s.files if f.path == "/etc/default/chrony"]


def test_mariadb_listens_on_the_controllers_management_ip(planned):
    _, plan = planned
    cnf = file_on(plan, "controller", "/etc/mysql/mariadb.conf.d/99-openstack.cnf")
    assert "bind-address = 10.0.0.11" in cnf
    for line in ("default-storage-engine = innodb", "innodb_file_per_table = on", "max_connections = 4096",
                 "collation-server = utf8_general_ci", "character-set-server = utf8"):
        assert line in cnf


def test_mariadb_is_secured_with_sql(planned):
    _, plan = planned
    step = step_named(plan, "mariadb-secure", "controller")
    assert "DROP DATABASE IF EXISTS test" in sql_of(step.commands[0])
    assert "User=''" in sql_of(step.commands[0])


def test_rabbitmq_user_openstack_gets_all_permissions(planned):
    ctx, plan = planned
    step = step_named(plan, "rabbitmq-user", "controller")
    text = " ".join(step.commands)
    assert f"add_user openstack {ctx.secrets['rabbit_pass']}" in text
    assert 'set_permissions openstack ".*" ".*" ".*"' in text


def test_memcached_and_etcd_listen_on_the_controller_ip(planned):
    _, plan = planned
    assert "-l 10.0.0.11" in file_on(plan, "controller", "/etc/memcached.conf")
    etcd = file_on(plan, "controller", "/etc/default/etcd")
    assert 'ETCD_INITIAL_CLUSTER="controller=http://10.0.0.11:2380"' in etcd
    assert 'ETCD_LISTEN_CLIENT_URLS="http://10.0.0.11:2379"' in etcd
    assert 'ETCD_ADVERTISE_CLIENT_URLS="http://10.0.0.11:2379"' in etcd


def test_keystone_uses_fernet_and_its_database_on_the_controller(planned):
    ctx, plan = planned
    conf = file_on(plan, "controller", "/etc/keystone/keystone.conf")
    assert "provider = fernet" in conf
    assert f"connection = mysql+pymysql://keystone:{ctx.secrets['keystone_dbpass']}@controller/keystone" in conf
    db = sql_of(step_named(plan, "keystone-database", "controller").commands[0])
    assert "'keystone'@'localhost'" in db and "'keystone'@'%'" in db


def test_keystone_database_check_logs_in_where_keystone_does(planned):
    """MariaDB listens on the controller's management IP only: a check via 127.0.0.1 never passes,
    so a second `lab install` would redo the grants and never report 0 changed."""
    ctx, plan = planned
    check = step_named(plan, "keystone-database", "controller").check
    assert "-h controller " in check and "127.0.0.1" not in check
    assert f"-p{ctx.secrets['keystone_dbpass']}" not in check.replace("'", "")


def test_keystone_manage_log_is_the_keystone_users_before_its_commands_run_side_by_side(planned):
    """db_sync runs as keystone next to fernet_setup as root: whoever creates the log file owns it."""
    commands = step_named(planned[1], "keystone-service", "controller").commands
    first = next(i for i, c in enumerate(commands) if "keystone-manage" in c and "keystone-manage.log" not in c)
    assert "touch /var/log/keystone/keystone-manage.log && chown keystone:keystone " \
           "/var/log/keystone/keystone-manage.log" in commands[:first]
    assert "db_sync" in commands[first] and "fernet_setup" in commands[first]


def test_keystone_bootstrap_puts_every_url_on_port_5000(planned):
    _, plan = planned
    bootstrap = next(c for c in step_named(plan, "keystone-service", "controller").commands
                     if "keystone-manage bootstrap" in c)
    urls = re.findall(r"--bootstrap-(admin|internal|public)-url (\S+)", bootstrap)
    assert sorted(u[0] for u in urls) == ["admin", "internal", "public"]
    assert {u[1] for u in urls} == {"http://controller:5000/v3/"}
    assert "--bootstrap-region-id RegionOne" in bootstrap


def test_keystone_is_served_by_apache_on_ubuntu_and_uwsgi_on_debian():
    ubuntu = " ".join(step_named(build_plan(inventory("ubuntu-18.04"), generate()), "keystone-service",
                                 "controller").commands)
    debian = " ".join(step_named(build_plan(inventory("debian-12"), generate()), "keystone-service",
                                 "controller").commands)
    assert "ServerName controller" in ubuntu and "restart apache2" in ubuntu
    assert "restart keystone" in debian and "apache2" not in debian


def test_identity_entities_are_the_guides(planned):
    _, plan = planned
    text = " ".join(step_named(plan, "identity-entities", "controller").commands)
    for fragment in ("domain create --description \"An Example Domain\" example", "project create --domain default"
                     " --description \"Service Project\" service", "myproject", "user create --domain default",
                     "role create myrole", "role add --project myproject --user myuser myrole"):
        assert fragment in text


def test_openrc_files_match_the_guide_and_are_private(planned):
    ctx, plan = planned
    admin = openrc(ctx.inventory, ctx.secrets, "admin")
    assert "export OS_AUTH_URL=http://controller:5000/v3" in admin
    assert "export OS_PROJECT_NAME=admin" in admin and "export OS_IDENTITY_API_VERSION=3" in admin
    demo = openrc(ctx.inventory, ctx.secrets, "demo")
    assert "export OS_USERNAME=myuser" in demo and "export OS_PROJECT_NAME=myproject" in demo
    step = step_named(plan, "openrc-files", "controller")
    assert {f.path: f.mode for f in step.files} == {"/root/admin-openrc": 0o600, "/root/demo-openrc": 0o600}
    assert step.files[0].content == admin


def test_no_check_calls_the_openstack_cli(planned):
    _, plan = planned
    for step in plan.steps:
        assert not (step.check and re.search(r"(^|[;&|(] *)openstack ", step.check)), step.name


def test_identity_entities_are_created_only_when_keystones_database_lacks_them(tmp_path):
    """A query per entity instead of `openstack ... show` (2-3 s each): only what is missing is
    sent, and all of it to one openstack process."""
    ctx = context("debian-12")
    step = step_named(build_plan(ctx.inventory, ctx.secrets), "identity-entities", "controller")
    host = IdentityHost(tmp_path, [(r"example|'service'|'myuser'", "1")])

    sent = host.run(step)

    assert sent == [
        ["project", "create", "--domain", "default", "--description", "Demo Project", "myproject"],
        ["user", "set", "--password", ctx.secrets["demo_pass"], "myuser"],
        ["role", "create", "myrole"],
        ["role", "add", "--project", "myproject", "--user", "myuser", "myrole"],
    ]
    assert host.sh(step.commands[-1]).returncode != 0  # the fake database still lacks them: not done


def test_the_batch_runs_commands_in_order_as_the_cli_parses_them_and_stops_at_a_failure(tmp_path):
    """The driver itself, on a stand-in openstackclient whose main() records argv."""
    package = tmp_path / "openstackclient"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shell.py").write_text(
        "import json\n"
        "class OpenStackShell:\n"
        "    def run(self, argv):\n"
        "        return self.run_subcommand(argv, how='run')\n"
        "    def run_subcommand(self, argv, how='again'):\n"
        f"        open({str(tmp_path / 'argv.jsonl')!r}, 'a').write(json.dumps([how] + argv) + '\\n')\n"
        "        return 1 if argv[:2] == ['role', 'show'] else 0\n")
    (tmp_path / "batch.py").write_text(openstack_batch.BATCH_SOURCE)
    lines = "\n".join(['domain create --description "An Example Domain" example', "",
                       "user create --password s3cret myuser", "role show nosuch", "role create never"])

    result = subprocess.run([sys.executable, str(tmp_path / "batch.py")], input=lines, text=True,
                            capture_output=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})

    ran = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    # The first command starts the CLI (and authenticates); the others reuse its session.
    assert ran == [["run", "domain", "create", "--description", "An Example Domain", "example"],
                   ["again", "user", "create", "--password", "s3cret", "myuser"], ["again", "role", "show", "nosuch"]]
    assert result.returncode == 1 and result.stderr.strip() == "openstack role show ...: exit 1"


def test_keystone_under_uwsgi_runs_one_worker_per_core():
    debian = step_named(build_plan(context("debian-12").inventory, context("debian-12").secrets),
                        "keystone-service", "controller")
    assert "sed -i 's/^processes = .*/processes = %k/' /etc/keystone/keystone-uwsgi.ini" in debian.commands
    ubuntu = step_named(build_plan(context("ubuntu-18.04").inventory, context("ubuntu-18.04").secrets),
                        "keystone-service", "controller")
    assert not any("uwsgi" in c for c in ubuntu.commands)


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_every_command_and_check_of_the_whole_plan_is_posix_sh(os_name):
    """Hosts run steps with sh (dash on Debian and Ubuntu): a quoting slip fails here, not on a host."""
    plan = build_plan(inventory(os_name), generate())
    for step in plan.steps:
        for text in (*step.commands, *([step.check] if step.check else [])):
            result = subprocess.run(["dash", "-n", "-c", text], capture_output=True, text=True)
            assert result.returncode == 0, (step.name, text, result.stderr)


def test_enable_units_enables_only_what_is_not_enabled_yet(tmp_path):
    from bootstrap.context import enable_units

    (tmp_path / "systemctl").write_text(
        '#!/bin/sh\nif [ "$1" = is-enabled ]; then grep -qx "$3" "$(dirname "$0")/enabled"; exit $?; fi\n'
        'echo "$*" >> "$(dirname "$0")/calls"\n')
    (tmp_path / "systemctl").chmod(0o755)
    (tmp_path / "enabled").write_text("swift-account\n")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = lambda *units: subprocess.run(["sh", "-c", enable_units(*units)], env=env).returncode  # noqa: E731

    assert run("swift-account", "swift-object", "swift-container") == 0
    assert run("swift-account") == 0  # nothing to enable: systemctl enable is not called at all
    assert (tmp_path / "calls").read_text().splitlines() == ["enable swift-object swift-container"]


def test_package_installs_defer_service_starts_and_always_clean_up(tmp_path):
    """While apt runs, policy-rc.d says 101 (no service starts); afterwards it is gone, even
    when apt fails; a policy-rc.d of the host's own is left alone."""
    from bootstrap.components import packages

    policy = tmp_path / "policy-rc.d"

    def run(command: str) -> subprocess.CompletedProcess:
        text = packages.starts_deferred(command).replace(packages.POLICY_RC_D, str(policy))
        return subprocess.run(["sh", "-c", text], capture_output=True, text=True)

    during = run(f"{policy} start; echo denied=$?; exit 3")
    assert during.returncode == 3 and "denied=101" in during.stdout
    assert not policy.exists()

    policy.write_text("#!/bin/sh\n# openstack-ec2-lab: services start once configured\nexit 101\n")  # a killed run's
    check = packages.NO_LEFTOVER_POLICY.replace(packages.POLICY_RC_D, str(policy))
    assert subprocess.run(["sh", "-c", check]).returncode != 0  # so the step is not done
    assert run("true").returncode == 0 and not policy.exists()
    assert subprocess.run(["sh", "-c", check]).returncode == 0

    policy.write_text("#!/bin/sh\nexit 0\n")  # the host's own
    assert run("true").returncode == 0 and policy.read_text() == "#!/bin/sh\nexit 0\n"
