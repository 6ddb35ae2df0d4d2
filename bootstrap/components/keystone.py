"""Identity service on the controller (guide chapter 2), served on port 5000 only.

What is done is read from the keystone database over the local socket: the openstack CLI
needs one to three seconds per call, too slow for a re-run that should change nothing in
seconds. The guide's `openstack` commands go to one process (openstack_batch.py).
"""

from __future__ import annotations

import shlex

from bootstrap import guide, hostprograms
from bootstrap.actions import Command, FileSpec, Service, Sql, SqlQuery, Wait
from bootstrap.components.openstack_batch import assignment_query, guide_command, user
from bootstrap.components.swift_proxy import render_ini
from bootstrap.context import (
    ADMIN_OPENRC,
    DEMO_OPENRC,
    KEYSTONE_URL,
    REGION,
    PlanContext,
    in_parallel,
)
from bootstrap.plan import Step
from bootstrap.render import mysql
from labcore.inventory import Inventory
from labcore.secrets import Secrets

KEYSTONE_CONF = "/etc/keystone/keystone.conf"
UWSGI_INI = "/etc/keystone/keystone-uwsgi.ini"
UWSGI_CLOSE = "add-header = Connection: close"
KEYSTONE_PROCESSES = 4
LOG_DIR = "/var/log/keystone"
MANAGE_LOG = f"{LOG_DIR}/keystone-manage.log"
BOOTSTRAP_URL = f"{KEYSTONE_URL}/"
KEYSTONE_WAIT_SECONDS = 60.0
_OPENRC = {
    "admin": {"project": "admin", "user": "admin", "secret": "admin_pass"},
    "demo": {"project": "myproject", "user": "myuser", "secret": "demo_pass"},
}
_PROJECT = "SELECT count(*) FROM project WHERE is_domain=0 AND domain_id='default' AND name="


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
    # Not in the guide: behind the front door (bootstrap/components/front_door.py) Keystone sees
    # http://controller:5000/v3; the door's X-Forwarded-Proto/-Prefix and Host make its version
    # links https://HOST/identity/v3 again, as DevStack sets it behind its tls-proxy.
    return render_ini({"DEFAULT": {"log_dir": LOG_DIR},
                       "database": {"connection": url},
                       "token": {"provider": "fernet"},
                       "oslo_middleware": {"enable_proxy_headers_parsing": "true"}})


def public_url(ctx: PlanContext) -> str:
    """The identity endpoint of the public interface: the front door's (labcore/front_door.py)."""
    return f"{ctx.door.identity_url}/"


def _database(ctx: PlanContext) -> Step:
    password = ctx.secrets["keystone_dbpass"].replace("'", "''")
    sql = ("CREATE DATABASE IF NOT EXISTS keystone;"
           f" GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost' IDENTIFIED BY '{password}';"
           f" GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'%' IDENTIFIED BY '{password}';")
    # Logging in as keystone.conf does (to the controller, where MariaDB listens) proves the grant.
    done = SqlQuery("SELECT 1", "keystone", ("keystone", ctx.secrets["keystone_dbpass"], ctx.controller.name))
    return Step("keystone-database", "keystone", (ctx.controller.name,),
                (Sql(sql, done, "1", "create the keystone database, grant the keystone user all on it"),),
                guide=guide.KEYSTONE_INSTALL)


def identity_endpoints_query(public: str) -> str:
    """Counts the identity endpoints as bootstrap makes them: admin and internal on the guide's URL,
    public on the door's (3 when all are right)."""
    return ("SELECT count(*) FROM endpoint e JOIN service s ON s.id = e.service_id WHERE s.type = 'identity'"
            f" AND e.region_id = '{REGION}' AND ((e.interface IN ('admin', 'internal') AND e.url = '{BOOTSTRAP_URL}')"
            f" OR (e.interface = 'public' AND e.url = '{public}'))")


def keystone_wait() -> Wait:
    return Wait("keystone answers on :5000", hostprograms.argv("python3", "wait_http.py", KEYSTONE_URL, "{seconds}"),
                seconds=KEYSTONE_WAIT_SECONDS)


def _web_server(ctx: PlanContext) -> Command:
    if ctx.profile.keystone_web == "apache":
        has = "grep -q '^ServerName controller$' /etc/apache2/apache2.conf"
        return Command((f"{has} || echo 'ServerName controller' >> /etc/apache2/apache2.conf",), has,
                       after_change=False, what="ServerName controller in /etc/apache2/apache2.conf")
    # Debian's keystone-uwsgi.ini starts 8 workers of 32 threads each. Two changes, both seen under
    # Tempest at concurrency 4 on the twin (README "No request fails under concurrent clients"):
    # - threads: with 32 threads a process, 3 of 274 identity tests failed: an application
    #   credential of a member was refused for the admin role, a role of another request running
    #   at the same time. With one thread a process (as Keystone's own sample ini has it) and 4
    #   processes, 0 failed, in the same time (5.3 min). 8 processes (each loads keystone with
    #   lazy-apps) took 35 s to answer on a 2-core host; 4 answer within the wait.
    # - --http-socket closes every connection after the answer without saying so: a client that
    #   keeps the connection of a 204 or a HEAD (no body, so no close to read) and reuses it at
    #   once meets "Connection reset by peer" (12 of 11,000 requests on this machine's uwsgi
    #   2.0.21 with Debian's ini, 0 with the header). `Connection: close` makes every client
    #   open a new connection instead.
    lines = (f"processes = {KEYSTONE_PROCESSES}", "threads = 1", UWSGI_CLOSE)
    return Command((f"sed -i 's/^processes = .*/processes = {KEYSTONE_PROCESSES}/; s/^threads = .*/threads = 1/' "
                    f"{UWSGI_INI}",
                    f"grep -qx '{UWSGI_CLOSE}' {UWSGI_INI} || echo '{UWSGI_CLOSE}' >> {UWSGI_INI}"),
                   " && ".join(f"grep -qx '{line}' {UWSGI_INI}" for line in lines), after_change=False,
                   what=f"keystone's uwsgi: {KEYSTONE_PROCESSES} processes of one thread, `Connection: close` on "
                        f"every answer ({UWSGI_INI})")


def _service(ctx: PlanContext) -> Step:
    admin_pass = shlex.quote(ctx.secrets["admin_pass"])
    setup = (
        # The guide runs db_sync (as keystone) first, which creates the log file keystone-manage
        # writes; side by side, a command run as root may create it first, owned by root, and
        # db_sync then fails on it. So the file is there, the keystone user's, beforehand.
        f"touch {MANAGE_LOG} && chown keystone:keystone {MANAGE_LOG}",
        # The guide's three setup commands are independent (database, fernet keys, credential
        # keys); each spends ~5 s loading keystone, so they run side by side.
        in_parallel("su -s /bin/sh -c 'keystone-manage db_sync' keystone",
                    "keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone",
                    "keystone-manage credential_setup --keystone-user keystone --keystone-group keystone"),
        # The guide's URLs for admin and internal; public is the front door's. Run again on a lab
        # whose public endpoint is another URL (an older lab's http://controller:5000/v3/), bootstrap
        # changes that endpoint's URL (it makes no second one).
        f"keystone-manage bootstrap --bootstrap-password {admin_pass}"
        f" --bootstrap-admin-url {BOOTSTRAP_URL} --bootstrap-internal-url {BOOTSTRAP_URL}"
        f" --bootstrap-public-url {public_url(ctx)} --bootstrap-region-id {REGION}",
    )
    endpoints = mysql(SqlQuery(identity_endpoints_query(public_url(ctx)), "keystone"))
    done = ("test -f /etc/keystone/fernet-keys/0 && test -f /etc/keystone/credential-keys/0"
            f" && [ \"$({endpoints} 2>/dev/null)\" = 3 ]")
    actions = (
        FileSpec(KEYSTONE_CONF, keystone_conf(ctx), mode=0o640, owner="root:keystone"),
        Command(setup, done, what="populate the identity database, fernet and credential keys, keystone-manage "
                                  "bootstrap (admin; the identity endpoints: internal and admin on :5000, "
                                  "public through the front door)"),
        _web_server(ctx),
        Service((ctx.profile.keystone_service,)),
        keystone_wait(),
    )
    return Step("keystone-service", "keystone", (ctx.controller.name,), actions, guide=guide.KEYSTONE_INSTALL)


def _openrc_files(ctx: PlanContext) -> Step:
    files = (FileSpec(ADMIN_OPENRC, openrc(ctx.inventory, ctx.secrets, "admin"), mode=0o600),
             FileSpec(DEMO_OPENRC, openrc(ctx.inventory, ctx.secrets, "demo"), mode=0o600))
    return Step("openrc-files", "keystone", (ctx.controller.name,), files, guide=guide.KEYSTONE_OPENRC)


def _entities(ctx: PlanContext) -> Step:
    actions = (
        guide_command(ctx, 'domain create --description "An Example Domain" example',
                      "SELECT count(*) FROM project WHERE is_domain=1 AND name='example'"),
        guide_command(ctx, 'project create --domain default --description "Service Project" service',
                      f"{_PROJECT}'service'"),
        guide_command(ctx, 'project create --domain default --description "Demo Project" myproject',
                      f"{_PROJECT}'myproject'"),
        user(ctx, "myuser", ctx.secrets["demo_pass"]),
        guide_command(ctx, "role create myrole", "SELECT count(*) FROM role WHERE name='myrole'"),
        guide_command(ctx, "role add --project myproject --user myuser myrole",
                      assignment_query("myuser", "myproject", "myrole")),
        # Not in the guide: Swift's keystoneauth gives this role reseller admin rights (its default
        # reseller_admin_role), the only way to set an account's quota; Tempest needs it to exist.
        guide_command(ctx, "role create ResellerAdmin", "SELECT count(*) FROM role WHERE name='ResellerAdmin'"),
    )
    return Step("identity-entities", "keystone", (ctx.controller.name,), actions, guide=guide.KEYSTONE_USERS)


def steps(ctx: PlanContext) -> list[Step]:
    return [_database(ctx), _service(ctx), _openrc_files(ctx), _entities(ctx)]
