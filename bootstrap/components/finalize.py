"""Finalize (guide chapter 6): swift.conf everywhere, /etc/swift owned by root:swift, services (re)started.

The services read files that earlier phases own (proxy-server.conf, the storage server
configs, the rings). After a restart this step records their checksums; the check
compares them again, so any later change to one of those files restarts the services on
the next `lab install`, and an unchanged, running lab is skipped without a restart.
"""

from __future__ import annotations

from bootstrap.components.swift_proxy import PROXY_CONF, SWIFT_DIR, render_ini
from bootstrap.components.swift_rings import RINGS, ring_path
from bootstrap.components.swift_storage import SERVER_PORTS, server_conf_path
from bootstrap.context import STAMP_DIR, PlanContext, enable_units
from bootstrap.plan import FileSpec, Step

SWIFT_CONF = f"{SWIFT_DIR}/swift.conf"
# What `swift-init` runs on a storage node (the guide's `all` minus what a storage node has no config for).
STORAGE_DAEMONS = (
    "account-server", "account-auditor", "account-reaper", "account-replicator",
    "container-server", "container-auditor", "container-replicator", "container-updater",
    "object-server", "object-auditor", "object-replicator", "object-updater",
)
_OWNED = f'[ -z "$(find {SWIFT_DIR} \\( ! -user root -o ! -group swift \\) -print)" ]'


def swift_conf(ctx: PlanContext) -> str:
    return render_ini({
        "swift-hash": {"swift_hash_path_suffix": ctx.secrets["swift_hash_path_suffix"],
                       "swift_hash_path_prefix": ctx.secrets["swift_hash_path_prefix"]},
        "storage-policy:0": {"name": "Policy-0", "default": "yes"},
    })


def swift_conf_file(ctx: PlanContext) -> FileSpec:
    return FileSpec(SWIFT_CONF, swift_conf(ctx), mode=0o640, owner="root:swift")


def checksum_stamp(name: str, inputs: tuple[str, ...], stamp_dir: str = STAMP_DIR) -> tuple[str, str]:
    """(command recording the inputs' checksums, check text true while they are unchanged)."""
    stamp = f"{stamp_dir}/{name}.sha256"
    files = " ".join(inputs)
    return (f"mkdir -p -m 0700 {stamp_dir} && sha256sum {files} > {stamp}",
            f"sha256sum {files} 2>/dev/null | cmp -s - {stamp}")


def units_active(units: tuple[str, ...]) -> str:
    """Check text: every unit active (`systemctl is-active` alone is true when any one is)."""
    return f'[ "$(systemctl is-active {" ".join(units)} | grep -cx active)" = {len(units)} ]'


def proxy_step(ctx: PlanContext) -> Step:
    proxy = ctx.profile.swift_proxy_service
    record, unchanged = checksum_stamp("swift-proxy", (PROXY_CONF, SWIFT_CONF, *(ring_path(r) for r in RINGS)))
    return Step(
        name="swift-proxy-start",
        phase="finalize",
        hosts=(ctx.controller.name,),
        files=(swift_conf_file(ctx),),
        commands=(f"chown -R root:swift {SWIFT_DIR}", "systemctl restart memcached", enable_units(proxy),
                  f"systemctl restart {proxy}", record),
        check=" && ".join((units_active(("memcached", proxy)), unchanged, _OWNED)),
    )


def _storage_services(ctx: PlanContext) -> tuple[tuple[str, ...], str]:
    """(commands that (re)start the storage services, check text true while they all run)."""
    units = ctx.profile.swift_storage_services
    if units:
        names = " ".join(units)
        return (enable_units(*units), f"systemctl restart {names}"), units_active(units)
    daemons = " ".join(STORAGE_DAEMONS)
    status = f"swift-init {daemons} status >/dev/null"
    # The guide's `swift-init all`: it exits non-zero for what a storage node has no config for
    # (the proxy) and when stopping what was not running; the status of our daemons decides.
    return (f"swift-init all restart || {status}",), status


def storage_step(ctx: PlanContext) -> Step:
    inputs = (*(server_conf_path(s) for s in SERVER_PORTS), SWIFT_CONF, *(ring_path(r) for r in RINGS))
    record, unchanged = checksum_stamp("swift-storage", inputs)
    start, running = _storage_services(ctx)
    return Step(
        name="swift-storage-start",
        phase="finalize",
        hosts=tuple(n.name for n in ctx.storage_nodes),
        files=(swift_conf_file(ctx),),
        commands=(f"chown -R root:swift {SWIFT_DIR}", *start, record),
        check=" && ".join((running, unchanged, _OWNED)),
    )


def steps(ctx: PlanContext) -> list[Step]:
    result = [proxy_step(ctx)]
    if ctx.storage_nodes:
        result.append(storage_step(ctx))
    return result

