"""Finalize (guide chapter 6): swift.conf everywhere, /etc/swift owned by root:swift, services (re)started.

The services read files that earlier phases own (proxy-server.conf, the storage server
configs, the rings). After a restart this step records their checksums; the check
compares them again, so any later change to one of those files restarts the services on
the next `lab install`, and an unchanged, running lab is skipped without a restart.
A leaving node (taken out of the config) is not started here: it serves as it is until the
ring changes drain it and then stop its services.
"""

from __future__ import annotations

import json

from bootstrap import guide, hostprograms
from bootstrap.actions import Command, FileSpec, Service, Wait
from bootstrap.components.swift_proxy import (
    PROXY_CONF,
    PROXY_PORT,
    SWIFT_DIR,
    realms_files,
    render_ini,
)
from bootstrap.components.swift_rings import RINGS, ring_path, serving_nodes
from bootstrap.components.swift_storage import SERVER_PORTS, server_conf_path
from bootstrap.components.tempauth import DEMO_SWIFTRC
from bootstrap.context import DEMO_OPENRC, STAMP_DIR, PlanContext
from bootstrap.plan import Step
from bootstrap.render import checksum_record, stamp_unchanged

SWIFT_CONF = f"{SWIFT_DIR}/swift.conf"
# What `swift-init` runs on a storage node (the guide's `all` minus what a storage node has no config for).
STORAGE_DAEMONS = (
    "account-server", "account-auditor", "account-reaper", "account-replicator",
    "container-server", "container-auditor", "container-replicator", "container-sync", "container-updater",
    "object-server", "object-auditor", "object-replicator", "object-updater",
)
CLOUD_READY_SECONDS = 180.0  # the twin's proxy answered 503 for ~30 s after a fresh install
OWNED = f'[ -z "$(find {SWIFT_DIR} \\( ! -user root -o ! -group swift \\) -print)" ]'


def swift_conf(ctx: PlanContext) -> str:
    return render_ini({
        "swift-hash": {"swift_hash_path_suffix": ctx.secrets["swift_hash_path_suffix"],
                       "swift_hash_path_prefix": ctx.secrets["swift_hash_path_prefix"]},
        "storage-policy:0": {"name": "Policy-0", "default": "yes"},
    })


def swift_conf_file(ctx: PlanContext) -> FileSpec:
    return FileSpec(SWIFT_CONF, swift_conf(ctx), mode=0o640, owner="root:swift")


def _storage_services(ctx: PlanContext, inputs: tuple[str, ...]):
    """The action that (re)starts the storage services when what they read changed."""
    stamp = f"{STAMP_DIR}/swift-storage.sha256"
    units = ctx.profile.swift_storage_services
    if units:
        return Service(units, watch=inputs, stamp=stamp)
    daemons = " ".join(STORAGE_DAEMONS)
    status = f"swift-init {daemons} status >/dev/null"
    # The guide's `swift-init all`: it exits non-zero for what a storage node has no config for
    # (the proxy) and when stopping what was not running; the status of our daemons decides.
    return Command((f"swift-init all restart || {status}", checksum_record(stamp, inputs)),
                   f"{status} && {stamp_unchanged(stamp, inputs)}",
                   what="swift-init all restart (when not all running, or what they read changed)")


def _owned() -> Command:
    return Command((f"chown -R root:swift {SWIFT_DIR}",), OWNED, after_change=False,
                   what=f"{SWIFT_DIR} owned by root:swift")


def _realms(ctx: PlanContext) -> tuple[str, ...]:
    return tuple(f.path for f in realms_files(ctx))


def proxy_step(ctx: PlanContext) -> Step:
    inputs = (PROXY_CONF, SWIFT_CONF, *_realms(ctx), *(ring_path(r) for r in RINGS))
    proxy = Service(("memcached", ctx.profile.swift_proxy_service), watch=inputs,
                    stamp=f"{STAMP_DIR}/swift-proxy.sha256")
    return Step("swift-proxy-start", "finalize", (ctx.controller.name,), (swift_conf_file(ctx), _owned(), proxy),
                guide=guide.SWIFT_FINALIZE)


def storage_step(ctx: PlanContext) -> Step:
    inputs = (*(server_conf_path(s) for s in SERVER_PORTS), SWIFT_CONF, *_realms(ctx),
              *(ring_path(r) for r in RINGS))
    return Step("swift-storage-start", "finalize", tuple(n.name for n in serving_nodes(ctx)),
                (swift_conf_file(ctx), _owned(), _storage_services(ctx, inputs)), guide=guide.SWIFT_FINALIZE)


def storage_servers(ctx: PlanContext) -> list[str]:
    return [f"{n.private_ip}:{port}" for n in serving_nodes(ctx) for port in sorted(SERVER_PORTS.values())]


def cloud_ready_step(ctx: PlanContext) -> Step:
    """Done means the cloud serves: a user's first steps (a token, a container, an object put
    and read back) work, once every storage node has started its services."""
    rc = DEMO_SWIFTRC if ctx.inventory.auth == "tempauth" else DEMO_OPENRC  # whose credentials the probe uses
    probe = hostprograms.argv("python3", "cloud_ready.py", rc, f"http://controller:{PROXY_PORT}",
                              json.dumps(storage_servers(ctx)))
    wait = Wait("the cloud serves the demo user: proxy, storage servers, token, container, object",
                probe, judge="cloud-ready", seconds=CLOUD_READY_SECONDS, read_only=False, always=True)
    return Step("cloud-ready", "finalize", (ctx.controller.name,), (wait,), guide=guide.SWIFT_VERIFY,
                after=tuple(n.name for n in serving_nodes(ctx)))


def steps(ctx: PlanContext) -> list[Step]:
    result = [proxy_step(ctx)]
    if serving_nodes(ctx):
        result += [storage_step(ctx), cloud_ready_step(ctx)]
    return result
