"""The install guide's sections each step implements (Rocky; the environment chapter is the
release-independent install guide's, Keystone's and Swift's are their rocky pages)."""

INSTALL = "https://docs.openstack.org/install-guide"
KEYSTONE = "https://docs.openstack.org/keystone/rocky/install"
SWIFT = "https://docs.openstack.org/swift/rocky/install"

HOSTS = f"{INSTALL}/environment-networking-controller.html"  # "Configure name resolution"
PACKAGES = f"{INSTALL}/environment-packages-ubuntu.html"  # archive, upgrade (and its reboot), the client
NTP_CONTROLLER = f"{INSTALL}/environment-ntp-controller.html"
NTP_OTHER = f"{INSTALL}/environment-ntp-other.html"
SQL = f"{INSTALL}/environment-sql-database-ubuntu.html"
MESSAGING = f"{INSTALL}/environment-messaging-ubuntu.html"
MEMCACHED = f"{INSTALL}/environment-memcached-ubuntu.html"
ETCD = f"{INSTALL}/environment-etcd-ubuntu.html"
KEYSTONE_INSTALL = f"{KEYSTONE}/keystone-install-ubuntu.html"
KEYSTONE_USERS = f"{KEYSTONE}/keystone-users-ubuntu.html"
KEYSTONE_OPENRC = f"{KEYSTONE}/keystone-openrc-ubuntu.html"
SWIFT_CONTROLLER = f"{SWIFT}/controller-install-ubuntu.html"
SWIFT_STORAGE = f"{SWIFT}/storage-install-ubuntu.html"
SWIFT_RINGS = f"{SWIFT}/initial-rings.html"
SWIFT_FINALIZE = f"{SWIFT}/finalize-installation-ubuntu.html"
SWIFT_VERIFY = f"{SWIFT}/verify.html"
