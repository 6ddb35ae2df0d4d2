"""Identity service on the controller (guide chapter 2), served on port 5000 only.

Checks read the keystone database over the local socket: the openstack CLI needs one to
three seconds per call, too slow for a re-run that should change nothing in seconds.
"""

from __future__ import annotations

import shlex

from bootstrap.components.database import mysql
from bootstrap.components.openstack_batch import (
    batch_step,
    confirm,
    run_batch,
    say,
    say_set_or_create,
    say_unless_counted,
)
from bootstrap.components.swift_proxy import render_ini
from bootstrap.context import (
    ADMIN_OPENRC,
    DEMO_OPENRC,
    KEYSTONE_URL,
    REGION,
    PlanContext,
    enable_units,
    in_parallel,
)
from bootstrap.plan import FileSpec, Step
from labcore.inventory import Inventory
from labcore.secrets import Secrets

KEYSTONE_CONF = "/etc/keystone/keystone.conf"
UWSGI_INI = "/etc/keystone/keystone-uwsgi.ini"
LOG_DIR = "/var/log/keystone"
MANAGE_LOG = f"{LOG_DIR}/keystone-manage.log"
BOOTSTRAP_URL = f"{KEYSTONE_URL}/"
_OPENRC = {
    "admin": {"project": "admin", "user": "admin", "secret": "admin_pass"},
    "demo": {"project": "myproject", "user": "myuser", "secret": "demo_pass"},
}


def openrc(inventory: Inventory, secrets: Secrets, which: str) -> str:
    """The guide's admin-openrc / demo-openrc (same text on the controller and under .lab/<name>/)."""
    rc = _OPENRC[which]
    values = {
        "OS_PROJECT_DOMAIN_NAME": "Default", "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_NAME": rc["project"], "OS_USERNAME": rc["user"], "OS_PASSWORD": secrets[rc["secret"]],
        "OS_AUTH_URL": KEYSTONE_URL, "OS_IDENTITY_API_VERSION": "3", "OS_IMAGE_API_VERSION": "2",
    }
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())


def keystone_conf(ctx: PlanContext) -> str:
    url = f"mysql+pymysql://keystone:{ctx.secrets['keystone_dbpass']}@controller/keystone"
    return render_ini({"DEFAULT": {"log_dir": LOG_DIR},
                       "database": {"connection": url},
                       "token": {"provider": "fernet"}})


def _database(ctx: PlanContext) -> Step:
    password = ctx.secrets["keystone_dbpass"].replace("'", "''")
    sql = ("CREATE DATABASE IF NOT EXISTS keystone;"
           f" GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost' IDENTIFIED BY '{password}';"
           f" GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'%' IDENTIFIED BY '{password}';")
    # Logging in as keystone.conf does (to the controller, where MariaDB listens) proves the grant.
    check = (f"MYSQL_PWD={shlex.quote(ctx.secrets['keystone_dbpass'])} mysql -u keystone -h {ctx.controller.name}"
             " keystone -e 'SELECT 1' >/dev/null 2>&1")
    return Step(name="keystone-database", phase="keystone", hosts=(ctx.controller.name,),
                commands=(mysql(sql),), check=check)


def _wait_for_keystone() -> str:
    return ("i=0; until python3 -c \"import urllib.request; urllib.request.urlopen('http://controller:5000/v3', timeout=3)\""
            " 2>/dev/null; do i=$((i+1)); [ $i -ge 60 ] && echo 'keystone does not answer on :5000' >&2 && exit 1;"
            " sleep 1; done")


def _web_server(ctx: PlanContext) -> tuple[tuple[FileSpec, ...], tuple[str, ...]]:
    if ctx.profile.keystone_web == "apache":
        return (), ("grep -q '^ServerName controller$' /etc/apache2/apache2.conf"
                    " || echo 'ServerName controller' >> /etc/apache2/apache2.conf",
                    "systemctl restart apache2")
    # Debian's keystone-uwsgi.ini starts 8 workers that each load keystone (lazy-apps): on a
    # 2-core host that took 35 s before :5000 answered. One worker per core (%k) serves a lab.
    workers = f"sed -i 's/^processes = .*/processes = %k/' {UWSGI_INI}"
    return (), (workers, enable_units(ctx.profile.keystone_service),
                f"systemctl restart {ctx.profile.keystone_service}")


def _service(ctx: PlanContext) -> Step:
    admin_pass = shlex.quote(ctx.secrets["admin_pass"])
    files, web = _web_server(ctx)
    commands = (
        # The guide runs db_sync (as keystone) first, which creates the log file keystone-manage
        # writes; side by side, a command run as root may create it first, owned by root, and
        # db_sync then fails on it. So the file is there, the keystone user's, beforehand.
        f"touch {MANAGE_LOG} && chown keystone:keystone {MANAGE_LOG}",
        # The guide's three setup commands are independent (database, fernet keys, credential
        # keys); each spends ~5 s loading keystone, so they run side by side.
        in_parallel("su -s /bin/sh -c 'keystone-manage db_sync' keystone",
                    "keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone",
                    "keystone-manage credential_setup --keystone-user keystone --keystone-group keystone"),
        f"keystone-manage bootstrap --bootstrap-password {admin_pass}"
        f" --bootstrap-admin-url {BOOTSTRAP_URL} --bootstrap-internal-url {BOOTSTRAP_URL}"
        f" --bootstrap-public-url {BOOTSTRAP_URL} --bootstrap-region-id {REGION}",
        *web,
        _wait_for_keystone(),
    )
    endpoints = mysql("SELECT count(*) FROM endpoint WHERE url='http://controller:5000/v3/'", "keystone")
    check = (f"test -f /etc/keystone/fernet-keys/0 && test -f /etc/keystone/credential-keys/0"
             f" && [ \"$({endpoints} 2>/dev/null)\" = 3 ] && {_wait_for_keystone().replace('60', '5')}")
    conf = FileSpec(KEYSTONE_CONF, keystone_conf(ctx), mode=0o640, owner="root:keystone")
    return Step(name="keystone-service", phase="keystone", hosts=(ctx.controller.name,),
                files=(conf, *files), commands=commands, check=check)


def _openrc_files(ctx: PlanContext) -> Step:
    files = (FileSpec(ADMIN_OPENRC, openrc(ctx.inventory, ctx.secrets, "admin"), mode=0o600),
             FileSpec(DEMO_OPENRC, openrc(ctx.inventory, ctx.secrets, "demo"), mode=0o600))
    return Step(name="openrc-files", phase="keystone", hosts=(ctx.controller.name,), files=files)


def _entities(ctx: PlanContext) -> Step:
    demo_pass = ctx.secrets["demo_pass"]
    project = "SELECT count(*) FROM project WHERE is_domain=0 AND domain_id='default' AND name="
    lines = [
        say_unless_counted("SELECT count(*) FROM project WHERE is_domain=1 AND name='example'",
                           'domain create --description "An Example Domain" example'),
        say_unless_counted(f"{project}'service'",
                           'project create --domain default --description "Service Project" service'),
        say_unless_counted(f"{project}'myproject'",
                           'project create --domain default --description "Demo Project" myproject'),
        # An existing myuser gets the current password (secrets.yaml may be new).
        say_set_or_create("SELECT count(*) FROM local_user WHERE name='myuser' AND domain_id='default'",
                          f"user set --password {demo_pass} myuser",
                          f"user create --domain default --password {demo_pass} myuser"),
        say_unless_counted("SELECT count(*) FROM role WHERE name='myrole'", "role create myrole"),
        say("role add --project myproject --user myuser myrole"),
    ]
    query = ("SELECT (SELECT count(*) FROM project WHERE is_domain=1 AND name='example')"
             " + (SELECT count(*) FROM project WHERE is_domain=0 AND domain_id='default' AND name IN ('service','myproject'))"
             " + (SELECT count(*) FROM role WHERE name='myrole')"
             " + (SELECT count(*) FROM local_user WHERE name='myuser' AND domain_id='default')"
             " + (SELECT count(*) FROM assignment a JOIN role r ON r.id=a.role_id JOIN local_user u ON u.user_id=a.actor_id"
             " JOIN project p ON p.id=a.target_id WHERE r.name='myrole' AND u.name='myuser' AND p.name='myproject')")
    done = f'[ "$({mysql(query, "keystone")} 2>/dev/null)" = 6 ]'
    return Step(name="identity-entities", phase="keystone", hosts=(ctx.controller.name,),
                commands=(run_batch(ctx.profile.python, lines), confirm(done, "the guide's identity entities")),
                check=done)


def steps(ctx: PlanContext) -> list[Step]:
    return [_database(ctx), _service(ctx), _openrc_files(ctx), batch_step(ctx), _entities(ctx)]
