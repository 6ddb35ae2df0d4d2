"""tempest.conf for the lab, from what the lab is: its credentials, its services, what its proxy serves.

Tempest reads one ini file that tells it where the cloud is and what the cloud has. Every
value here comes from the lab (nothing is discovered by Tempest itself): the admin
credentials from secrets.yaml (Tempest makes its own users with them: dynamic credentials),
the services that exist (identity and object-store) and the ones that do not (so their tests
are never collected as failures), the guide's operator role and Swift's reseller admin role,
and the middleware the proxy announces in its `/info`, so the discoverability test checks
exactly what the proxy says it has.

Feature flags differ per release: what a flag turns on must exist in the Keystone the
profile installs, or the tests it adds fail; what exists must be on, or its tests are
skipped for no reason (issue 22: "each remaining skip is deliberate").
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass
from typing import Mapping

from bootstrap.context import KEYSTONE_URL, REGION

WORKSPACE = "/var/lib/openstack-ec2-lab/tempest"
# Debian's and Ubuntu's CA bundle, which holds the lab's CA once the front door's trust step ran:
# the public endpoints Tempest uses are the door's (HTTPS, signed by the lab's CA).
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
OPERATOR_ROLE = "myrole"  # the guide's role, one of the proxy's operator_roles
RESELLER_ADMIN_ROLE = "ResellerAdmin"  # keystoneauth's default reseller_admin_role
# The container-sync realm and this cluster's name in it (container-sync-realms.conf).
SYNC_REALM = "lab"
SYNC_CLUSTER = "lab1"
# Services Tempest knows of that a Keystone + Swift lab does not have.
ABSENT_SERVICES = ("cinder", "glance", "neutron", "nova")


@dataclass(frozen=True)
class ReleaseTempest:
    """The Tempest a profile runs, and what the profile's Keystone serves ([identity-feature-enabled])."""

    tempest: str  # the Tempest release installed for the profile
    # Application credential access rules: Keystone 16 (Train) and later; None where the
    # profile's Tempest has no such option (23.0.0 has none: it has no such tests either).
    access_rules: bool | None
    security_compliance: bool = False  # off by the lab's choice (README: the deliberate skips)


# Ubuntu 18.04 + the Cloud Archive's Rocky: Keystone 14, Tempest 23.0.0 (the last release that
# supports Rocky) on the host's Python 3.6. Debian 12: Keystone 22 (Zed), Debian's tempest 33.0.0.
FEATURES = {"ubuntu-18.04": ReleaseTempest(tempest="23.0.0", access_rules=None),
            "debian-12": ReleaseTempest(tempest="33.0.0", access_rules=True)}


def discoverable_apis(info: Mapping[str, object]) -> list[str]:
    """The optional APIs the proxy's /info announces: every section but Swift's own."""
    return sorted(name for name in info if name != "swift")


def render(profile: str, admin_password: str, info: Mapping[str, object], *, keystone_url: str = KEYSTONE_URL,
           ca_file: str | None = None, workspace: str = WORKSPACE) -> str:
    """The whole tempest.conf (holds the admin password: written 0600, shown only masked)."""
    features = FEATURES[profile]
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"log_file": f"{workspace}/tempest.log", "use_stderr": "false"},
        "oslo_concurrency": {"lock_path": f"{workspace}/lock"},
        "auth": {"use_dynamic_credentials": "true", "create_isolated_networks": "false",
                 "admin_username": "admin", "admin_password": admin_password,
                 "admin_project_name": "admin", "admin_domain_name": "Default"},
        "identity": {"uri_v3": keystone_url, "auth_version": "v3", "region": REGION,
                     "v3_endpoint_type": "public", **({"ca_certificates_file": ca_file} if ca_file else {})},
        "identity-feature-enabled": {"api_v2": "false", "api_v3": "true",
                                     "application_credentials": "true",
                                     **({} if features.access_rules is None else
                                        {"access_rules": _flag(features.access_rules)}),
                                     "security_compliance": _flag(features.security_compliance)},
        "service_available": {"swift": "true", **{name: "false" for name in ABSENT_SERVICES}},
        "object-storage": {"region": REGION, "endpoint_type": "public", "operator_role": OPERATOR_ROLE,
                           "reseller_admin_role": RESELLER_ADMIN_ROLE, "realm_name": SYNC_REALM,
                           "cluster_name": SYNC_CLUSTER},
        "object-storage-feature-enabled": {"discoverable_apis": ",".join(discoverable_apis(info)),
                                           "container_sync": "true", "object_versioning": "true",
                                           "discoverability": "true"},
        "validation": {"run_validation": "false"},
    }
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]  # Tempest's keys are case-sensitive
    parser.read_dict(sections)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _flag(value: bool) -> str:
    return "true" if value else "false"
