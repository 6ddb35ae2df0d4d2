"""The Keystone half of the plan against the guide: its database, fernet, port 5000, the bootstrap,
the identity entities only when Keystone lacks them, the openrc files. Both profiles; no SSH."""

from __future__ import annotations

import re

from identity_host import IdentityHost
from plan_fixtures import (  # noqa: F401 - planned is a fixture
    actions,
    file_on,
    inventory,
    plan_for,
    planned,
    rendered,
    step_named,
)

from bootstrap.actions import Command, OpenStack, Service, Sql
from bootstrap.components.keystone import openrc


def test_keystone_uses_fernet_and_its_database_on_the_controller(planned):
    ctx, plan = planned
    conf = file_on(plan, "controller", "/etc/keystone/keystone.conf")
    assert "provider = fernet" in conf
    assert f"connection = mysql+pymysql://keystone:{ctx.secrets['keystone_dbpass']}@controller/keystone" in conf
    (sql,) = actions(step_named(plan, "keystone-database", "controller"), Sql)
    assert "'keystone'@'localhost'" in sql.statement and "'keystone'@'%'" in sql.statement


def test_keystone_database_is_done_when_keystone_logs_in_where_keystone_does(planned):
    """MariaDB listens on the controller's management IP only: a check via 127.0.0.1 never passes,
    so a second `lab install` would redo the grants and never report 0 changed."""
    ctx, plan = planned
    (sql,) = actions(step_named(plan, "keystone-database", "controller"), Sql)
    assert sql.done.login == ("keystone", ctx.secrets["keystone_dbpass"], "controller")
    fact = rendered(step_named(plan, "keystone-database", "controller"))[0]
    assert fact.startswith("MYSQL_PWD=") and " -h controller " in fact and "-p" not in fact.split()


def test_keystone_manage_log_is_the_keystone_users_before_its_commands_run_side_by_side(planned):
    """db_sync runs as keystone next to fernet_setup as root: whoever creates the log file owns it."""
    setup = actions(step_named(planned[1], "keystone-service", "controller"), Command)[0].run
    assert setup[0] == ("touch /var/log/keystone/keystone-manage.log && chown keystone:keystone "
                        "/var/log/keystone/keystone-manage.log")
    assert "db_sync" in setup[1] and "fernet_setup" in setup[1] and "credential_setup" in setup[1]


def test_keystone_bootstrap_puts_admin_and_internal_on_port_5000_and_public_through_the_door(planned):
    _, plan = planned
    bootstrap = actions(step_named(plan, "keystone-service", "controller"), Command)[0].run[2]
    urls = dict(re.findall(r"--bootstrap-(admin|internal|public)-url (\S+)", bootstrap))
    assert urls == {"admin": "http://controller:5000/v3/", "internal": "http://controller:5000/v3/",
                    "public": "https://10.0.0.11/identity/v3/"}
    assert "--bootstrap-region-id RegionOne" in bootstrap


def test_keystone_is_served_by_apache_on_ubuntu_and_uwsgi_on_debian_and_waited_for_on_5000():
    ubuntu = step_named(plan_for("ubuntu-18.04")[1], "keystone-service", "controller")
    debian = step_named(plan_for("debian-12")[1], "keystone-service", "controller")
    assert "ServerName controller" in actions(ubuntu, Command)[1].run[0]
    assert actions(ubuntu, Service)[0].units == ("apache2",) and actions(debian, Service)[0].units == ("keystone",)
    assert actions(debian, Command)[1].run == (
        "sed -i 's/^processes = .*/processes = 4/; s/^threads = .*/threads = 1/' /etc/keystone/keystone-uwsgi.ini",
        "grep -qx 'add-header = Connection: close' /etc/keystone/keystone-uwsgi.ini || "
        "echo 'add-header = Connection: close' >> /etc/keystone/keystone-uwsgi.ini")
    for step in (ubuntu, debian):
        wait = step.actions[-1]
        assert wait.command(15) == "python3 /usr/local/lib/openstack-ec2-lab/wait_http.py http://controller:5000/v3 15"


def test_identity_entities_are_the_guides_commands(planned):
    ctx, plan = planned
    argv = [a.argv for a in actions(step_named(plan, "identity-entities", "controller"), OpenStack)]
    assert argv == [
        ("domain", "create", "--description", "An Example Domain", "example"),
        ("project", "create", "--domain", "default", "--description", "Service Project", "service"),
        ("project", "create", "--domain", "default", "--description", "Demo Project", "myproject"),
        ("user", "create", "--domain", "default", "--password", ctx.secrets["demo_pass"], "myuser"),
        ("role", "create", "myrole"),
        ("role", "add", "--project", "myproject", "--user", "myuser", "myrole"),
        ("role", "create", "ResellerAdmin"),  # not the guide's: Swift's reseller admin role (issue 22)
    ]


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


def test_no_fact_calls_the_openstack_cli(planned):
    _, plan = planned
    from bootstrap.decide import facts_for

    for step in plan.steps:
        for fact in (f for a in step.actions for f in facts_for(a)):
            assert not re.search(r"(^|[;&|(] *)openstack ", fact.command()), step.name


def test_identity_entities_are_created_only_when_keystones_database_lacks_them(tmp_path):
    """A query per entity instead of `openstack ... show` (2-3 s each): only what is missing is
    sent, all of it to one openstack process (the real openstack_batch.py)."""
    ctx, plan = plan_for("debian-12")
    step = step_named(plan, "identity-entities", "controller")
    host = IdentityHost(tmp_path, [(r"name='example'|name='service'|^SELECT count\(\*\) FROM local_user", "1")])

    report = host.install(step, tmp_path, ctx.secrets)

    assert host.sent() == [
        ["project", "create", "--domain", "default", "--description", "Demo Project", "myproject"],
        ["user", "set", "--password", ctx.secrets["demo_pass"], "myuser"],  # exists, but never set by the lab
        ["role", "create", "myrole"],
        ["role", "add", "--project", "myproject", "--user", "myuser", "myrole"],
        ["role", "create", "ResellerAdmin"],
    ]
    # The fake database still counts none of what was created: the step says so and fails.
    assert "`myproject`: not in keystone's database after the openstack command" in report.failure.tail[-1]


def test_identity_entities_that_all_exist_send_nothing_and_the_password_once(tmp_path):
    ctx, plan = plan_for("debian-12")
    step = step_named(plan, "identity-entities", "controller")
    host = IdentityHost(tmp_path, [(r".", "1")])

    first = host.install(step, tmp_path, ctx.secrets)
    sent_first = host.sent()
    second = host.install(step, tmp_path, ctx.secrets)

    assert first.ok and sent_first == [["user", "set", "--password", ctx.secrets["demo_pass"], "myuser"]]
    assert second.ok and host.sent() == [] and second.counts()["changed"] == 0
    assert host.stamps() == ["openstack-user-myuser.sha256"]
    assert ctx.secrets["demo_pass"] not in (host.host.path("/var/lib/lab/openstack-user-myuser.sha256").read_text())
