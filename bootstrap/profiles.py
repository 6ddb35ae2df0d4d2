"""What differs between operating systems, releases and targets, in one place.

The component modules build the same steps for every profile; they ask the profile for
package names, service names and the few commands that differ. `ubuntu-18.04` + rocky is
the official guide (and the AWS default); `debian-12` is what the twin's hosts run, with
Debian's own OpenStack packages (Zed), which serve Keystone with uwsgi instead of Apache.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap import hostprograms
from bootstrap.apt_lock import AptLock, guarded
from labcore.errors import LabError

# Where `add-apt-repository cloud-archive:rocky` points apt on Ubuntu 18.04: the pocket's
# Release file exists while the Ubuntu Cloud Archive still serves Rocky (end of life since
# 2020). The host asks it before anything else (bootstrap/host/apt_pocket.py), so a pocket
# that is gone stops the install in one line instead of halfway through apt.
CLOUD_ARCHIVE_RELEASE = "http://ubuntu-cloud.archive.canonical.com/ubuntu/dists/bionic-updates/rocky/Release"
POCKET_SECONDS = 20


@dataclass(frozen=True)
class Profile:
    name: str  # the inventory's os, e.g. "ubuntu-18.04"
    release: str  # "rocky"
    # What /etc/os-release says on a host of this profile (ID, VERSION_ID): first boot checks it.
    os_id: str
    version_id: str
    # Package archive: commands that make the release's packages installable (on Ubuntu 18.04
    # first the question whether the cloud archive still has the pocket), `apt-get update`
    # first of the apt commands on a fresh host, and the upgrade. As written here, without
    # the lock wait: archive() gives what is sent.
    archive_commands: tuple[str, ...]
    archive_check: str | None
    # Packages, by what they are for; two apt-gets per host install them (environment_packages, then service_packages).
    client_packages: tuple[str, ...]
    chrony_packages: tuple[str, ...]
    database_packages: tuple[str, ...]
    messaging_packages: tuple[str, ...]
    memcached_packages: tuple[str, ...]
    etcd_packages: tuple[str, ...]
    keystone_packages: tuple[str, ...]
    swift_proxy_packages: tuple[str, ...]
    swift_storage_packages: tuple[str, ...]
    # The controller's TLS front door (Apache on 443: mod_ssl, mod_proxy) and the dashboard (Horizon
    # under mod_wsgi, behind that door): a Keystone lab's only, so a TempAuth lab leaves them out.
    front_door_packages: tuple[str, ...]
    dashboard_packages: tuple[str, ...]
    # Of dashboard_packages, the ones the dashboard's own step installs once the lab's settings and
    # upstream's fixes are in place (the rest, Horizon's code among them, come with the service
    # packages): openstack-dashboard's postinst compresses Horizon's CSS and JS, which then happens
    # once, for the lab's URLs and with the fixed files, off Keystone's critical path.
    dashboard_late_packages: tuple[str, ...]
    # debconf answers given before installing (Debian's OpenStack packages ask questions).
    debconf_selections: tuple[str, ...]
    # Services.
    database_service: str  # the unit's own name, never an alias: systemd refuses to enable an alias
    # Where MariaDB keeps accounts: mysql.user up to 10.3 (Ubuntu 18.04: 10.1), mysql.global_priv
    # from 10.4 (Debian 12: 10.11), where mysql.user is a view that refuses DELETE.
    database_accounts: str
    keystone_web: str  # "apache" (mod_wsgi, ServerName in apache2.conf) or "uwsgi" (service keystone)
    keystone_service: str  # what to restart after keystone.conf changed
    etcd_service: str
    swift_storage_services: tuple[str, ...]  # systemd units, or () to use `swift-init all start`
    swift_proxy_service: str = "swift-proxy"
    # "default-file": RSYNC_ENABLE=true in /etc/default/rsync (Ubuntu 18.04, the guide);
    # "systemd": Debian 12 only has the unit (systemctl enable --now rsync).
    rsync_enable: str = "systemd"
    chrony_conf: str = "/etc/chrony/chrony.conf"
    python: str = "python3"
    # How each apt command waits for dpkg's lock: apt's own option from apt 1.9.11 (Debian 12:
    # apt 2.6), the lab's wait before each apt command on apt 1.6 (Ubuntu 18.04).
    apt_lock: AptLock = AptLock(option=True)

    def apt(self, command: str) -> str:
        """command as sent to a host of this profile: with its bounded wait for dpkg's lock."""
        return guarded(self.apt_lock, command)

    def archive(self) -> tuple[str, ...]:
        """The archive commands as sent (each apt command with its lock wait)."""
        return tuple(self.apt(c) for c in self.archive_commands)

    def environment_packages(self, role: str) -> tuple[str, ...]:
        """The environment chapter's packages but the client: NTP, and on the controller the
        SQL database, message queue, memcached and etcd. They are what the controller's
        services phase configures while the service packages are still being unpacked."""
        groups = [self.chrony_packages]
        if role == "controller":
            groups += [self.database_packages, self.messaging_packages, self.memcached_packages,
                       self.etcd_packages]
        return _union(groups)

    def service_packages(self, role: str) -> tuple[str, ...]:
        """The OpenStack client (the guide puts it on every node) and the services' own
        packages (Keystone and the Swift proxy, or the Swift storage servers), less what
        environment_packages already installs and what the dashboard's step installs."""
        groups = [self.client_packages]
        if role == "controller":
            groups += [self.keystone_packages, self.swift_proxy_packages, self.front_door_packages,
                       self.dashboard_packages]
        elif role == "object":
            groups += [self.swift_storage_packages]
        later = set(self.environment_packages(role)) | set(self.dashboard_late_packages)
        return tuple(p for p in _union(groups) if p not in later)

    def packages_for(self, role: str) -> tuple[str, ...]:
        """Every package a node of this role needs, without duplicates."""
        late = self.dashboard_late_packages if role == "controller" else ()
        return self.environment_packages(role) + self.service_packages(role) + late


def _union(groups: list[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for group in groups for p in group))


UBUNTU_1804_ROCKY = Profile(
    name="ubuntu-18.04",
    release="rocky",
    os_id="ubuntu",
    version_id="18.04",
    archive_commands=(
        hostprograms.call("python3", "apt_pocket.py", CLOUD_ARCHIVE_RELEASE, str(POCKET_SECONDS), "debian-12"),
        "apt-get update",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y software-properties-common",
        "add-apt-repository -y cloud-archive:rocky",
        "apt-get update",
        "DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confold dist-upgrade",
    ),
    archive_check="grep -rqs 'rocky' /etc/apt/sources.list.d/",
    client_packages=("python-openstackclient",),
    chrony_packages=("chrony",),
    database_packages=("mariadb-server", "python-pymysql"),
    messaging_packages=("rabbitmq-server",),
    memcached_packages=("memcached", "python-memcache"),
    etcd_packages=("etcd",),
    keystone_packages=("keystone", "apache2", "libapache2-mod-wsgi"),
    swift_proxy_packages=("swift", "swift-proxy", "python-swiftclient", "python-keystoneclient",
                          "python-keystonemiddleware", "memcached"),
    swift_storage_packages=("xfsprogs", "rsync", "swift", "swift-account", "swift-container", "swift-object"),
    front_door_packages=("apache2",),  # mod_ssl and mod_proxy are part of Ubuntu's apache2
    dashboard_packages=("openstack-dashboard",),  # the guide's Horizon chapter; it brings libapache2-mod-wsgi
    dashboard_late_packages=("openstack-dashboard",),
    debconf_selections=(),
    database_service="mariadb",  # mariadb-server-10.1's unit; mysql.service is its alias
    database_accounts="mysql.user",
    keystone_web="apache",
    keystone_service="apache2",
    etcd_service="etcd",
    swift_storage_services=(),
    rsync_enable="default-file",
    python="python",
    apt_lock=AptLock(option=False),  # apt 1.6
)

# Debian's packages would configure their databases themselves through dbconfig-common;
# the guide does that by hand, so the automatic configuration is declined.
_DEBIAN_DEBCONF = (
    "keystone keystone/configure_db boolean false",
    "keystone keystone/register-endpoint boolean false",
    "keystone keystone/create-admin-tenant boolean false",
    "keystone keystone/configure_rabbit boolean false",
)

DEBIAN_12 = Profile(
    name="debian-12",
    release="rocky",
    os_id="debian",
    version_id="12",
    archive_commands=("apt-get update",),
    archive_check=None,
    client_packages=("python3-openstackclient",),
    chrony_packages=("chrony",),
    database_packages=("mariadb-server", "python3-pymysql"),
    messaging_packages=("rabbitmq-server",),
    memcached_packages=("memcached", "python3-memcache"),
    etcd_packages=("etcd-server",),
    keystone_packages=("keystone",),
    swift_proxy_packages=("swift", "swift-proxy", "python3-swiftclient", "python3-keystoneclient",
                          "python3-keystonemiddleware", "memcached"),
    swift_storage_packages=("xfsprogs", "rsync", "swift", "swift-account", "swift-container", "swift-object"),
    front_door_packages=("apache2",),
    # Horizon 23 (Zed) and Python 3's mod_wsgi; not openstack-dashboard-apache (port 80, /horizon).
    # Horizon's code (python3-django-horizon) is named: upstream's fix to one of its JavaScript
    # files goes in before openstack-dashboard's postinst bundles it.
    dashboard_packages=("python3-django-horizon", "libapache2-mod-wsgi-py3", "openstack-dashboard"),
    dashboard_late_packages=("openstack-dashboard",),
    debconf_selections=_DEBIAN_DEBCONF,
    database_service="mariadb",
    database_accounts="mysql.global_priv",
    apt_lock=AptLock(option=True),  # apt 2.6
    keystone_web="uwsgi",
    keystone_service="keystone",
    etcd_service="etcd",
    swift_storage_services=(
        "swift-account", "swift-account-auditor", "swift-account-reaper", "swift-account-replicator",
        "swift-container", "swift-container-auditor", "swift-container-replicator", "swift-container-sync",
        "swift-container-updater", "swift-object", "swift-object-auditor", "swift-object-replicator", "swift-object-updater",
    ),
)

PROFILES = {p.name: p for p in (UBUNTU_1804_ROCKY, DEBIAN_12)}


@dataclass(frozen=True)
class TimePolicy:
    """Where the controller gets its time, and whether chrony may set the clock.

    On AWS the controller follows Amazon Time Sync; on the twin the containers share the
    host's clock, which they must never set, and cannot reach an outside server, so
    chrony runs with -x and the controller serves its local clock.
    """

    upstream: str | None
    set_clock: bool


AWS_TIME = TimePolicy(upstream="169.254.169.123", set_clock=True)
SIM_TIME = TimePolicy(upstream=None, set_clock=False)


def profile_for(os_name: str, release: str = "rocky") -> Profile:
    try:
        profile = PROFILES[os_name]
    except KeyError:
        raise LabError(f"no bootstrap profile for os {os_name!r}; known: {', '.join(sorted(PROFILES))}") from None
    if profile.release != release:
        raise LabError(f"profile {os_name} installs {profile.release}, not {release}")
    return profile


def time_policy_for(target: str) -> TimePolicy:
    return SIM_TIME if target == "sim" else AWS_TIME
