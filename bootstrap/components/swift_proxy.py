"""Swift on the controller (guide chapter 3): the swift identity and endpoints, proxy-server.conf.

The proxy is only started in finalize, once the rings and swift.conf exist; finalize also
restarts it whenever this file changes later (it compares a checksum of every file the
proxy reads).
"""

from __future__ import annotations

import configparser
import io

from bootstrap import guide
from bootstrap.actions import FileSpec
from bootstrap.components.openstack_batch import assignment_query, guide_command, user
from bootstrap.context import REGION, PlanContext
from bootstrap.plan import Step

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


def proxy_ini(pipeline: tuple[str, ...], auth: dict[str, dict[str, str]]) -> str:
    """proxy-server.conf: the pipeline, its auth filters' sections, then the cache and the plain filters."""
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"bind_port": str(PROXY_PORT), "user": "swift", "swift_dir": SWIFT_DIR},
        "pipeline:main": {"pipeline": " ".join(pipeline)},
        "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": "True"},
        **auth,
        "filter:cache": {"use": "egg:swift#memcache", "memcache_servers": MEMCACHED},
    }
    for name, entry_point in _PLAIN_FILTERS.items():
        sections[f"filter:{name}"] = {"use": f"egg:swift#{entry_point}"}
    return render_ini(sections)


def proxy_conf(swift_pass: str) -> str:
    return proxy_ini(PIPELINE, {
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
    })


# ------------------------------------------------------------------ keystone entities
def endpoint_query(interface: str, url: str) -> str:
    """Counts the object-store endpoint of this interface in the region with exactly this URL."""
    return ("SELECT count(*) FROM endpoint e JOIN service s ON s.id = e.service_id WHERE s.type = 'object-store'"
            f" AND e.interface = '{interface}' AND e.region_id = '{REGION}' AND e.url = '{url}' AND e.enabled = 1")


def keystone_step(ctx: PlanContext) -> Step:
    """The guide's swift user, its admin role on the service project, the object-store
    service and its three endpoints: each created unless Keystone's database has it."""
    actions = (
        user(ctx, "swift", ctx.secrets["swift_pass"]),
        guide_command(ctx, "role add --project service --user swift admin",
                      assignment_query("swift", "service", "admin")),
        guide_command(ctx, 'service create --name swift --description "OpenStack Object Storage" object-store',
                      "SELECT count(*) FROM service WHERE type = 'object-store'"),
        *(guide_command(ctx, f"endpoint create --region {REGION} object-store {interface} {url}",
                        endpoint_query(interface, url)) for interface, url in ENDPOINTS),
    )
    return Step("swift-identity", "swift-proxy", (ctx.controller.name,), actions, guide=guide.SWIFT_CONTROLLER)


def config_step(ctx: PlanContext) -> Step:
    return Step("swift-proxy-config", "swift-proxy", (ctx.controller.name,),
                (FileSpec(PROXY_CONF, proxy_conf(ctx.secrets["swift_pass"]), mode=0o640, owner="root:swift"),),
                guide=guide.SWIFT_CONTROLLER)


def steps(ctx: PlanContext) -> list[Step]:
    return [keystone_step(ctx), config_step(ctx)]
