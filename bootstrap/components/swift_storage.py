"""Swift storage nodes (guide chapter 4): rsync for replication, the account/container/object servers.

The devices themselves were formatted and mounted under /srv/node by `lab up`. The servers
are started in finalize, when the rings and swift.conf are there; finalize restarts them
whenever one of these configs changes later.

A node or volume taken out of the config is left as it is here until the ring changes
have drained it (bootstrap/ring_changes.py); then retire_node_step stops and disables the
node's Swift services and rsync, and retire_volume_step unmounts the volume and drops its
fstab line, so that `lab up` can remove them.
"""

from __future__ import annotations

from bootstrap import guide
from bootstrap.actions import Command, FileSpec, Service
from bootstrap.components.swift_proxy import SWIFT_DIR, realms_files, render_ini
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from bootstrap.profiles import Profile
from bootstrap.render import join
from labcore.inventory import NodeRecord, VolumeRecord

DEVICES_DIR = "/srv/node"
RECON_CACHE = "/var/cache/swift"
RSYNCD_CONF = "/etc/rsyncd.conf"
# The guide's ports: account 6202, container 6201, object 6200.
SERVER_PORTS = {"account": 6202, "container": 6201, "object": 6200}
# The background daemons' sections of each rocky sample (empty: the defaults are the guide's).
_DAEMON_SECTIONS = {
    "account": ("account-replicator", "account-auditor", "account-reaper"),
    "container": ("container-replicator", "container-updater", "container-auditor", "container-sync"),
    "object": ("object-replicator", "object-reconstructor", "object-updater", "object-auditor"),
}


def server_conf_path(server: str) -> str:
    return f"{SWIFT_DIR}/{server}-server.conf"


# The container-sync daemon's pass every 30 s, not the default 300 s: a synced container shows
# its objects within a minute (Tempest's container-sync test waits for that).
SYNC_INTERVAL = {"interval": "30"}


def server_conf(server: str, bind_ip: str, mode: str = "full") -> str:
    recon = {"use": "egg:swift#recon", "recon_cache_path": RECON_CACHE}
    if server == "object":
        recon["recon_lock_path"] = "/var/lock"
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"bind_ip": bind_ip, "bind_port": str(SERVER_PORTS[server]), "user": "swift",
                    "swift_dir": SWIFT_DIR, "devices": DEVICES_DIR, "mount_check": "True"},
        "pipeline:main": {"pipeline": f"healthcheck recon {server}-server"},
        f"app:{server}-server": {"use": f"egg:swift#{server}"},
        "filter:healthcheck": {"use": "egg:swift#healthcheck"},
        "filter:recon": recon,
    }
    sections.update({name: {} for name in _DAEMON_SECTIONS[server]})
    if server == "container" and mode == "full":
        sections["container-sync"] = SYNC_INTERVAL
    return render_ini(sections)


def rsyncd_conf(address: str) -> str:
    lines = ["uid = swift", "gid = swift", "log file = /var/log/rsyncd.log", "pid file = /var/run/rsyncd.pid",
             f"address = {address}"]
    for module in SERVER_PORTS:
        lines += ["", f"[{module}]", "max connections = 2", f"path = {DEVICES_DIR}/", "read only = False",
                  f"lock file = /var/lock/{module}.lock"]
    return "\n".join(lines) + "\n"


def _rsync_uses_default_file(profile: Profile) -> bool:
    """Ubuntu 18.04 (the guide) enables the daemon in /etc/default/rsync; Debian 12 only has the systemd unit."""
    return profile.rsync_enable == "default-file"


def rsync_step(ctx: PlanContext, node: NodeRecord) -> Step:
    actions: tuple = (FileSpec(RSYNCD_CONF, rsyncd_conf(node.private_ip)),)
    if _rsync_uses_default_file(ctx.profile):
        actions += (Command(("sed -i 's/^RSYNC_ENABLE=.*/RSYNC_ENABLE=true/' /etc/default/rsync",
                             "grep -qx 'RSYNC_ENABLE=true' /etc/default/rsync"
                             " || echo 'RSYNC_ENABLE=true' >> /etc/default/rsync"),
                            "grep -qx 'RSYNC_ENABLE=true' /etc/default/rsync", after_change=False,
                            what="RSYNC_ENABLE=true in /etc/default/rsync"),)
    return Step("swift-rsync", "swift-storage", (node.name,), actions + (Service(("rsync",)),),
                guide=guide.SWIFT_STORAGE)


# The guide makes /var/cache/swift root:swift 775; Debian's units (CacheDirectory=swift)
# make it swift:swift 755 again at every start. Either way what matters is that the
# swift user can write there, so that is what the check asks.
DIRS_DONE = (
    f'[ "$(stat -c %U:%G {DEVICES_DIR})" = swift:swift ] && '
    f'[ -z "$(find {DEVICES_DIR} -mindepth 1 -maxdepth 1 \\( ! -user swift -o ! -group swift \\) -print)" ] && '
    f'runuser -u swift -- test -w {RECON_CACHE}'
)


def servers_step(ctx: PlanContext, node: NodeRecord) -> Step:
    mode = ctx.inventory.swift_pipeline
    files = (*(FileSpec(server_conf_path(server), server_conf(server, node.private_ip, mode), mode=0o640,
                        owner="root:swift") for server in SERVER_PORTS), *realms_files(ctx))
    dirs = Command((f"mkdir -p {DEVICES_DIR} {RECON_CACHE}", f"chown -R swift:swift {DEVICES_DIR}",
                    f"chown -R root:swift {RECON_CACHE}", f"chmod -R 775 {RECON_CACHE}"), DIRS_DONE,
                   what=f"{DEVICES_DIR} the swift user's, {RECON_CACHE} writable by it")
    return Step("swift-storage-config", "swift-storage", (node.name,), (*files, dirs), guide=guide.SWIFT_STORAGE)


def steps(ctx: PlanContext) -> list[Step]:
    """One step per node where the content differs by node (its management IP); leaving nodes keep theirs."""
    nodes = [n for n in ctx.storage_nodes if not n.leaving]
    return [rsync_step(ctx, n) for n in nodes] + [servers_step(ctx, n) for n in nodes]


# ------------------------------------------------------------------ after a drain
# A Swift daemon as ps shows it: the interpreter, then the program (never the shell that asks).
SWIFT_RUNNING = "pgrep -f '^[^ ]*python[0-9.]* [^ ]*/swift-(account|container|object)' >/dev/null"


def retire_node_step(ctx: PlanContext, node: NodeRecord) -> Step:
    """A drained node: its Swift services and rsync stopped and disabled (a reboot does not bring them back)."""
    units = ctx.profile.swift_storage_services
    if units:
        every = (*units, "rsync")
        run: tuple[str, ...] = (f"systemctl disable --now {join(every)}",)
        done = f"! systemctl is-active -q {join(every)} && ! systemctl is-enabled -q {join(every)}"
    else:  # the guide's swift-init; Ubuntu's packages also enable systemd units for the daemons
        run = ("swift-init all stop || true",
               "for u in $(systemctl list-unit-files --no-legend 'swift-*' | awk '{print $1}'); do "
               "systemctl disable --now \"$u\"; done",
               "systemctl disable --now rsync", f"! {SWIFT_RUNNING}")
        done = f"! {SWIFT_RUNNING} && ! systemctl is-active -q rsync && ! systemctl is-enabled -q rsync"
    action = Command(run, done, after_change=False,
                     what="stop and disable the Swift services and rsync: every device of the node is drained")
    return Step("swift-retire-node", "finalize", (node.name,), (action,), guide=guide.SWIFT_STORAGE)


def _fstab_has(point: str) -> str:
    return f"awk -v p={point} '$1 !~ /^#/ && $2 == p {{f=1}} END {{exit !f}}' /etc/fstab"


def retire_volume_step(node: NodeRecord, volume: VolumeRecord) -> Step:
    """A drained volume: unmounted (a moment of retries while an auditor still reads it) and out of fstab."""
    point = f"{DEVICES_DIR}/{volume.name}"
    run = (f"i=0; while mountpoint -q {point}; do umount {point} && break; i=$((i+1)); "
           f"[ $i -ge 10 ] && {{ echo '{point} is busy (fuser -vm {point} shows who)' >&2; exit 1; }}; sleep 1; done",
           f"if {_fstab_has(point)}; then awk -v p={point} '$1 ~ /^#/ || $2 != p' /etc/fstab > /etc/fstab.lab-new "
           f"&& mv -f /etc/fstab.lab-new /etc/fstab; fi",
           "if command -v systemctl >/dev/null; then systemctl daemon-reload; fi")
    action = Command(run, f"! mountpoint -q {point} && ! {_fstab_has(point)}", after_change=False,
                     what=f"unmount {point} and remove its fstab line: the volume is drained")
    return Step(f"swift-retire-{volume.name}", "finalize", (node.name,), (action,), guide=guide.SWIFT_STORAGE)
