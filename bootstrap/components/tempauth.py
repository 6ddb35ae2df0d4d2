"""A Swift-only lab (config `auth: tempauth`): Swift's own TempAuth in place of Keystone.

The field notes: "If you use only Swift, Keystone is not needed: Swift provides TempAuth
and can run on its own." Such a lab installs chrony, memcached (the proxy's token cache),
the Swift proxy, the storage servers and the rings; no MariaDB, RabbitMQ, etcd or Keystone,
which are only there for Keystone. It is the smallest, fastest and cheapest lab there is.

The proxy pipeline is the guide's with `tempauth` where the guide has `authtoken
keystoneauth`, as Swift's own etc/proxy-server.conf-sample has it, and the sample's
`user_<account>_<user> = <key> <groups>` lines define two accounts:
  admin:admin  .admin .reseller_admin  (every account), key = secrets' admin_pass
  demo:demo    .admin of its own account AUTH_demo,  key = secrets' demo_pass
The keys are the lab's generated admin and demo secrets in secrets.yaml (0600, masked in
every plan and log like the other secrets), so a TempAuth lab has no secret of its own kind.

Instead of the guide's openrc files the lab writes swiftrc files (ST_AUTH, ST_USER, ST_KEY,
which the `swift` client reads), 0600, on the controller and under .lab/<name>/.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from bootstrap import guide
from bootstrap.actions import FileSpec, Packages
from bootstrap.components import packages
from bootstrap.components.swift_proxy import PIPELINES, PROXY_CONF, PROXY_PORT, proxy_ini, realms_files, with_auth
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from bootstrap.profiles import Profile
from labcore.inventory import Inventory
from labcore.secrets import Secrets

AUTH_URL = f"http://controller:{PROXY_PORT}/auth/v1.0"
ADMIN_SWIFTRC = "/root/admin-swiftrc"
DEMO_SWIFTRC = "/root/demo-swiftrc"
SWIFTRC = {"admin": ADMIN_SWIFTRC, "demo": DEMO_SWIFTRC}
# which -> (account, user, secret holding the key, TempAuth groups)
ACCOUNTS = {
    "admin": ("admin", "admin", "admin_pass", ".admin .reseller_admin"),
    "demo": ("demo", "demo", "demo_pass", ".admin"),
}
# Swift's sample pipeline has tempauth where the guide has authtoken keystoneauth.
TEMPAUTH_PIPELINES = {mode: with_auth(pipeline, ("tempauth",)) for mode, pipeline in PIPELINES.items()}
TEMPAUTH_PIPELINE = TEMPAUTH_PIPELINES["full"]
# The chapters a TempAuth lab leaves out, and why (`lab plan` says so).
LEFT_OUT = (
    ("SQL database (MariaDB)", "only Keystone keeps data in it"),
    ("message queue (RabbitMQ)", "no service of a Swift-only lab uses one"),
    ("etcd", "no service of a Swift-only lab uses it"),
    ("identity service (Keystone)", "Swift's TempAuth, in the proxy, authenticates the users"),
)


def proxy_conf(secrets: Secrets, mode: str = "full") -> str:
    users = {f"user_{account}_{user}": f"{secrets[secret]} {groups}"
             for account, user, secret, groups in ACCOUNTS.values()}
    return proxy_ini(TEMPAUTH_PIPELINES[mode], {"filter:tempauth": {"use": "egg:swift#tempauth", **users}}, mode)


def swiftrc(inventory: Inventory, secrets: Secrets, which: str) -> str:
    """The swift client's environment for admin or demo (same text on the controller and under .lab/<name>/)."""
    account, user, secret, _ = ACCOUNTS[which]
    values = {"ST_AUTH": AUTH_URL, "ST_USER": f"{account}:{user}", "ST_KEY": secrets[secret]}
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())


def unwanted(profile: Profile) -> set[str]:
    """Packages only Keystone and its environment need (and the OpenStack client, which talks to Keystone)."""
    p = profile
    names = {*p.database_packages, *p.messaging_packages, *p.etcd_packages, *p.keystone_packages,
             *p.client_packages, *p.front_door_packages, *p.dashboard_packages}
    wanted = {*p.chrony_packages, *p.memcached_packages, *p.swift_proxy_packages, *p.swift_storage_packages}
    return names - wanted | {n for n in p.swift_proxy_packages if "keystone" in n}


def packages_for(profile: Profile, role: str) -> tuple[str, ...]:
    """Every package a node of this role needs in a TempAuth lab (the install floor's list)."""
    left_out = unwanted(profile)
    return tuple(n for n in profile.packages_for(role) if n not in left_out)


def package_steps(ctx: PlanContext) -> list[Step]:
    """packages.steps with what only Keystone needs left out (debconf answers for Keystone too)."""
    unwanted_names = unwanted(ctx.profile)
    result = []
    for step in packages.steps(ctx):
        actions = tuple(replace(a, names=tuple(n for n in a.names if n not in unwanted_names),
                                debconf=tuple(d for d in a.debconf if not d.startswith("keystone ")))
                        if isinstance(a, Packages) else a for a in step.actions)
        result.append(replace(step, actions=actions))
    return result


def steps(ctx: PlanContext) -> list[Step]:
    """The proxy's configuration with TempAuth, and the swiftrc files (the guide's openrc, for TempAuth)."""
    controller = (ctx.controller.name,)
    config = Step("swift-proxy-config", "swift-proxy", controller,
                  (FileSpec(PROXY_CONF, proxy_conf(ctx.secrets, ctx.inventory.swift_pipeline), mode=0o640,
                            owner="root:swift"), *realms_files(ctx)),
                  guide=guide.SWIFT_CONTROLLER)
    files = Step("swiftrc-files", "swift-proxy", controller,
                 tuple(FileSpec(path, swiftrc(ctx.inventory, ctx.secrets, which), mode=0o600)
                       for which, path in SWIFTRC.items()), guide=guide.SWIFT_VERIFY)
    return [config, files]
