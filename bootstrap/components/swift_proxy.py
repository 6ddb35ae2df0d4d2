"""Swift on the controller (guide chapter 3): the swift identity and endpoints, proxy-server.conf.

The proxy is only started in finalize, once the rings and swift.conf exist; finalize also
restarts it whenever this file changes later (it compares a checksum of every file the
proxy reads).
"""

from __future__ import annotations

import configparser
import io
import shlex

from bootstrap import guide
from bootstrap.actions import Command, FileSpec
from bootstrap.components.openstack_batch import assignment_query, guide_command, user
from bootstrap.context import ADMIN_OPENRC, REGION, PlanContext
from bootstrap.plan import Step
from bootstrap.render import mysql

SWIFT_DIR = "/etc/swift"
PROXY_CONF = f"{SWIFT_DIR}/proxy-server.conf"
PROXY_PORT = 8080
# The guide's URLs, for the internal and admin interfaces; the public one is the front door's
# (labcore/front_door.py: https://HOST/v1/AUTH_%(project_id)s).
INTERNAL_URL = f"http://controller:{PROXY_PORT}/v1/AUTH_%(project_id)s"
ADMIN_URL = f"http://controller:{PROXY_PORT}/v1"
# The default pipeline: Swift's own sample's (proxy-server.conf-sample, the same in 2.19.0 of
# Rocky and 2.30.0 of Zed) with the guide's authtoken keystoneauth where the sample has
# tempauth, and the three middlewares DevStack adds to it: crossdomain before the auth,
# formpost and staticweb right after it. So the lab serves the whole Swift API Tempest
# tests (TempURL, form POST, static web, crossdomain.xml, copy, symlinks, listing formats).
PIPELINE = ("catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "cache", "listing_formats",
            "container_sync", "bulk", "tempurl", "ratelimit", "crossdomain", "authtoken", "keystoneauth",
            "formpost", "staticweb", "copy", "container-quotas", "account-quotas", "slo", "dlo", "versioned_writes",
            "symlink", "proxy-logging", "proxy-server")
# The install guide's pipeline, in its order (`swift: {pipeline: guide}`).
GUIDE_PIPELINE = ("catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "cache", "container_sync", "bulk",
                  "ratelimit", "authtoken", "keystoneauth", "container-quotas", "account-quotas", "slo", "dlo",
                  "versioned_writes", "proxy-logging", "proxy-server")
PIPELINES = {"full": PIPELINE, "guide": GUIDE_PIPELINE}
# Container sync between containers of this cluster: one realm naming it, its key a lab
# secret; the proxies and the container servers read the same file.
SYNC_REALMS_CONF = "/etc/swift/container-sync-realms.conf"
SYNC_REALM = "lab"
SYNC_CLUSTER = "lab1"
# The guide says admin,user; the keystone chapter gives the demo user myrole, not user.
OPERATOR_ROLES = "admin,myrole"
MEMCACHED = "controller:11211"
AUTH_URL = "http://controller:5000"
# Filters whose section is just the entry point of the rocky sample.
_PLAIN_FILTERS = {
    "catch_errors": "catch_errors", "gatekeeper": "gatekeeper", "healthcheck": "healthcheck",
    "proxy-logging": "proxy_logging", "listing_formats": "listing_formats", "bulk": "bulk", "tempurl": "tempurl",
    "ratelimit": "ratelimit", "crossdomain": "crossdomain", "formpost": "formpost", "staticweb": "staticweb",
    "copy": "copy", "container-quotas": "container_quotas", "account-quotas": "account_quotas", "slo": "slo",
    "dlo": "dlo", "symlink": "symlink",
}
# Filters with settings of their own.
_SET_FILTERS = {
    # The guide leaves the sample's allow_versioned_writes = false: X-Versions-Location was refused.
    "versioned_writes": {"use": "egg:swift#versioned_writes", "allow_versioned_writes": "true"},
    # /info names this cluster's realm and name, as a client needs them for X-Container-Sync-To.
    "container_sync": {"use": "egg:swift#container_sync", "current": f"//{SYNC_REALM}/{SYNC_CLUSTER}"},
}


def render_ini(sections: dict[str, dict[str, str]]) -> str:
    """An ini file with sections and keys in the given order (configparser, no interpolation)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep keys as written
    parser.read_dict(sections)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n"


def proxy_ini(pipeline: tuple[str, ...], auth: dict[str, dict[str, str]], mode: str = "full") -> str:
    """proxy-server.conf: the pipeline, its auth filters' sections, then the cache and the other filters
    (mode "guide": exactly the guide's, without the settings the lab adds)."""
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"bind_port": str(PROXY_PORT), "user": "swift", "swift_dir": SWIFT_DIR},
        "pipeline:main": {"pipeline": " ".join(pipeline)},
        "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": "True"},
        **auth,
        "filter:cache": {"use": "egg:swift#memcache", "memcache_servers": MEMCACHED},
    }
    for name in dict.fromkeys(pipeline):  # only the filters the pipeline has
        if name in _PLAIN_FILTERS:
            sections[f"filter:{name}"] = {"use": f"egg:swift#{_PLAIN_FILTERS[name]}"}
        elif name in _SET_FILTERS:
            sections[f"filter:{name}"] = _SET_FILTERS[name] if mode == "full" else {"use": f"egg:swift#{name}"}
    return render_ini(sections)


def sync_realms_conf(key: str) -> str:
    """container-sync-realms.conf: one realm, this cluster in it, reached at the proxy."""
    return render_ini({SYNC_REALM: {"key": key, f"cluster_{SYNC_CLUSTER}": f"http://controller:{PROXY_PORT}/v1/"}})


def sync_realms_file(ctx: PlanContext) -> FileSpec:
    return FileSpec(SYNC_REALMS_CONF, sync_realms_conf(ctx.secrets["swift_sync_realm_key"]), mode=0o640,
                    owner="root:swift")


def with_auth(pipeline: tuple[str, ...], auth: tuple[str, ...]) -> tuple[str, ...]:
    """The pipeline with these auth filters where it has the guide's authtoken keystoneauth."""
    return tuple(part for name in pipeline
                 for part in (auth if name == "authtoken" else () if name == "keystoneauth" else (name,)))


def proxy_conf(swift_pass: str, mode: str = "full") -> str:
    return proxy_ini(PIPELINES[mode], {
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
    }, mode)


# ------------------------------------------------------------------ keystone entities
def endpoints(ctx: PlanContext) -> tuple[tuple[str, str], ...]:
    """(interface, URL) of the object-store endpoints: public through the front door, the others the guide's."""
    return (("public", ctx.door.object_store_url), ("internal", INTERNAL_URL), ("admin", ADMIN_URL))


def endpoint_query(interface: str, url: str | None, *, same_url: bool = True) -> str:
    """Counts the object-store endpoints of this interface in the region: with exactly this URL,
    with any URL (url None), or with another URL than this one (same_url False)."""
    where = "" if url is None else f" AND e.url {'=' if same_url else '<>'} '{url}'"
    return ("SELECT count(*) FROM endpoint e JOIN service s ON s.id = e.service_id WHERE s.type = 'object-store'"
            f" AND e.interface = '{interface}' AND e.region_id = '{REGION}'{where} AND e.enabled = 1")


def public_url_update(ctx: PlanContext) -> Command:
    """A lab made before the front door has a public endpoint on the guide's URL: `openstack
    endpoint set --url` gives it the door's (the endpoint keeps its id; no second one is made)."""
    url = ctx.door.object_store_url
    ids = mysql(endpoint_query("public", url, same_url=False).replace("count(*)", "e.id"), "keystone")
    run = (f". {ADMIN_OPENRC} && for id in $({ids}); do openstack endpoint set --url {shlex.quote(url)} \"$id\"; "
           f"done",)
    # No such endpoint, or no object-store service yet (the creates above make it with the door's URL).
    done = f'n=$({mysql(endpoint_query("public", url, same_url=False), "keystone")} 2>/dev/null); [ "${{n:-0}}" = 0 ]'
    return Command(run, done, after_change=False,
                   what=f"the public object-store endpoint set to {url} where it has another URL")


def keystone_step(ctx: PlanContext) -> Step:
    """The guide's swift user, its admin role on the service project, the object-store
    service and its three endpoints: each created unless Keystone's database has it."""
    actions = (
        user(ctx, "swift", ctx.secrets["swift_pass"]),
        guide_command(ctx, "role add --project service --user swift admin",
                      assignment_query("swift", "service", "admin")),
        guide_command(ctx, 'service create --name swift --description "OpenStack Object Storage" object-store',
                      "SELECT count(*) FROM service WHERE type = 'object-store'"),
        # Public: any URL counts as made (an older lab's is set to the door's below, not made twice).
        *(guide_command(ctx, f"endpoint create --region {REGION} object-store {interface} {url}",
                        endpoint_query(interface, None if interface == "public" else url))
          for interface, url in endpoints(ctx)),
        public_url_update(ctx),
    )
    return Step("swift-identity", "swift-proxy", (ctx.controller.name,), actions, guide=guide.SWIFT_CONTROLLER)


def realms_files(ctx: PlanContext) -> tuple[FileSpec, ...]:
    """The realms file where the lab's pipeline syncs containers; the guide's pipeline has none."""
    return (sync_realms_file(ctx),) if ctx.inventory.swift_pipeline == "full" else ()


def config_step(ctx: PlanContext) -> Step:
    conf = proxy_conf(ctx.secrets["swift_pass"], ctx.inventory.swift_pipeline)
    return Step("swift-proxy-config", "swift-proxy", (ctx.controller.name,),
                (FileSpec(PROXY_CONF, conf, mode=0o640, owner="root:swift"), *realms_files(ctx)),
                guide=guide.SWIFT_CONTROLLER)


def steps(ctx: PlanContext) -> list[Step]:
    return [keystone_step(ctx), config_step(ctx)]
