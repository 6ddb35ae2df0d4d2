"""Swift on the controller (guide chapter 3): the swift identity and endpoints, proxy-server.conf.

The proxy is only started in finalize, once the rings and swift.conf exist; finalize also
restarts it whenever this file changes later (it compares a checksum of every file the
proxy reads).
"""

from __future__ import annotations

import configparser
import io

from bootstrap.components.database import mysql
from bootstrap.components.openstack_batch import (
    confirm,
    run_batch,
    say,
    say_set_or_create,
    say_unless_counted,
)
from bootstrap.context import REGION, STAMP_DIR, PlanContext, commands_stamp
from bootstrap.plan import FileSpec, Step

SWIFT_DIR = "/etc/swift"
PROXY_CONF = f"{SWIFT_DIR}/proxy-server.conf"
PROXY_PORT = 8080
PUBLIC_URL = f"http://controller:{PROXY_PORT}/v1/AUTH_%(project_id)s"
ADMIN_URL = f"http://controller:{PROXY_PORT}/v1"
ENDPOINTS = (("public", PUBLIC_URL), ("internal", PUBLIC_URL), ("admin", ADMIN_URL))
# The guide's pipeline, in its order; keystone instead of tempauth.
PIPELINE = ("catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "cache", "container_sync", "bulk",
            "ratelimit", "authtoken", "keystoneauth", "container-quotas", "account-quotas", "slo", "dlo",
            "versioned_writes", "proxy-logging", "proxy-server")
# The guide says admin,user; the keystone chapter gives the demo user myrole, not user.
OPERATOR_ROLES = "admin,myrole"
MEMCACHED = "controller:11211"
IDENTITY_STAMP = f"{STAMP_DIR}/swift-identity.sha256"
AUTH_URL = "http://controller:5000"
# Filters whose section is just the entry point of the rocky sample.
_PLAIN_FILTERS = {
    "catch_errors": "catch_errors", "gatekeeper": "gatekeeper", "healthcheck": "healthcheck",
    "proxy-logging": "proxy_logging", "container_sync": "container_sync", "bulk": "bulk",
    "ratelimit": "ratelimit", "container-quotas": "container_quotas", "account-quotas": "account_quotas",
    "slo": "slo", "dlo": "dlo", "versioned_writes": "versioned_writes",
}


def render_ini(sections: dict[str, dict[str, str]]) -> str:
    """An ini file with sections and keys in the given order (configparser, no interpolation)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep keys as written
    parser.read_dict(sections)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n"


def proxy_conf(swift_pass: str) -> str:
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"bind_port": str(PROXY_PORT), "user": "swift", "swift_dir": SWIFT_DIR},
        "pipeline:main": {"pipeline": " ".join(PIPELINE)},
        "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": "True"},
        "filter:keystoneauth": {"use": "egg:swift#keystoneauth", "operator_roles": OPERATOR_ROLES},
        "filter:authtoken": {
            "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
            "www_authenticate_uri": AUTH_URL,
            "auth_url": AUTH_URL,
            "memcached_servers": MEMCACHED,
            "auth_type": "password",
            "project_domain_id": "default",
            "user_domain_id": "default",
            "project_name": "service",
            "username": "swift",
            "password": swift_pass,
            "delay_auth_decision": "True",
        },
        "filter:cache": {"use": "egg:swift#memcache", "memcache_servers": MEMCACHED},
    }
    for name, entry_point in _PLAIN_FILTERS.items():
        sections[f"filter:{name}"] = {"use": f"egg:swift#{entry_point}"}
    return render_ini(sections)


# ------------------------------------------------------------------ keystone entities
def _sql(query: str) -> str:
    """Check text: the keystone database answers query (root over the local socket: no password, no CLI)."""
    if any(c in query for c in '"$`\\'):
        raise ValueError("query must not need shell escaping inside double quotes")
    return f'mysql -N -B keystone -e "{query}"'


def entities_query() -> str:
    """One row "users assignments services good-endpoints all-endpoints"; done means "1 1 1 3 3"."""
    wanted = ", ".join(f"'{interface} {url}'" for interface, url in ENDPOINTS)
    store = "FROM endpoint e JOIN service s ON s.id = e.service_id WHERE s.type = 'object-store'"
    return (
        "SELECT CONCAT_WS(' ', "
        "(SELECT count(*) FROM local_user WHERE domain_id = 'default' AND name = 'swift'), "
        "(SELECT count(*) FROM assignment a JOIN local_user u ON u.user_id = a.actor_id "
        "JOIN project p ON p.id = a.target_id JOIN role r ON r.id = a.role_id "
        "WHERE a.type = 'UserProject' AND u.domain_id = 'default' AND u.name = 'swift' "
        "AND p.domain_id = 'default' AND p.name = 'service' AND r.name = 'admin'), "
        "(SELECT count(*) FROM service WHERE type = 'object-store' AND enabled = 1), "
        f"(SELECT count(*) {store} AND e.enabled = 1 AND e.region_id = '{REGION}' "
        f"AND CONCAT(e.interface, ' ', e.url) IN ({wanted})), "
        f"(SELECT count(*) {store}))"
    )


ENTITIES_DONE = "1 1 1 3 3"


def _endpoint_line(interface: str, url: str) -> str:
    """Create the endpoint, or correct its URL and drop duplicates: re-running converges."""
    if any(c in url for c in "'\"$`\\"):
        raise ValueError(f"endpoint URL {url!r} must not need shell quoting")
    ids = mysql("SELECT e.id FROM endpoint e JOIN service s ON s.id = e.service_id WHERE s.type = 'object-store'"
                f" AND e.interface = '{interface}' AND e.region_id = '{REGION}'", "keystone")
    return (f"ids=$({ids}) && if [ -z \"$ids\" ]; then "
            f"{say(f'endpoint create --region {REGION} object-store {interface} {url}')}; "
            f"else set -- $ids; echo \"endpoint set --url '{url}' $1\"; shift; "
            f"[ $# = 0 ] || echo \"endpoint delete $*\"; fi")


def keystone_step(ctx: PlanContext) -> Step:
    """The database says whether the entities exist; the stamp says whether they were last
    made with these very commands, so a new swift password (or URL) runs the step again.
    The stamp holds a sha256 of the commands, never the password itself."""
    swift_pass = ctx.secrets["swift_pass"]
    lines = [
        # An existing user gets the current password: a regenerated secrets.yaml reaches
        # Keystone, not only proxy-server.conf (as for myuser in the keystone chapter).
        say_set_or_create("SELECT count(*) FROM local_user WHERE domain_id = 'default' AND name = 'swift'",
                          f"user set --password {swift_pass} swift",
                          f"user create --domain default --password {swift_pass} swift"),
        # Keystone's grant API is silent when the assignment already exists.
        say("role add --project service --user swift admin"),
        say_unless_counted("SELECT count(*) FROM service WHERE type = 'object-store'",
                           'service create --name swift --description "OpenStack Object Storage" object-store'),
        *(_endpoint_line(interface, url) for interface, url in ENDPOINTS),
    ]
    done = f'[ "$({_sql(entities_query())})" = "{ENTITIES_DONE}" ]'
    commands = (run_batch(ctx.profile.python, lines), confirm(done, "the swift user, service and endpoints"))
    record, recorded = commands_stamp(IDENTITY_STAMP, commands)
    return Step(
        name="swift-identity",
        phase="swift-proxy",
        hosts=(ctx.controller.name,),
        commands=(*commands, record),
        check=f"{done} && {recorded}",
    )


def config_step(ctx: PlanContext) -> Step:
    return Step(
        name="swift-proxy-config",
        phase="swift-proxy",
        hosts=(ctx.controller.name,),
        files=(FileSpec(PROXY_CONF, proxy_conf(ctx.secrets["swift_pass"]), mode=0o640, owner="root:swift"),),
    )


def steps(ctx: PlanContext) -> list[Step]:
    return [keystone_step(ctx), config_step(ctx)]
