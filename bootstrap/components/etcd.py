"""etcd on the controller (guide: environment, etcd)."""

from __future__ import annotations

from bootstrap import guide
from bootstrap.actions import Command, FileSpec, Service
from bootstrap.context import PlanContext
from bootstrap.plan import Step

ETCD_DEFAULTS = "/etc/default/etcd"
DATA = "/var/lib/etcd"


def etcd_env(name: str, ip: str) -> str:
    values = {
        "ETCD_NAME": name,
        "ETCD_DATA_DIR": DATA,
        "ETCD_INITIAL_CLUSTER_STATE": "new",
        "ETCD_INITIAL_CLUSTER_TOKEN": "etcd-cluster-01",
        "ETCD_INITIAL_CLUSTER": f"{name}=http://{ip}:2380",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"http://{ip}:2380",
        "ETCD_ADVERTISE_CLIENT_URLS": f"http://{ip}:2379",
        "ETCD_LISTEN_PEER_URLS": "http://0.0.0.0:2380",
        "ETCD_LISTEN_CLIENT_URLS": f"http://{ip}:2379",
    }
    return "".join(f'{key}="{value}"\n' for key, value in values.items())


def steps(ctx: PlanContext) -> list[Step]:
    service = ctx.profile.etcd_service
    controller = ctx.controller
    # The package started etcd with its own defaults: a new cluster config needs a fresh data dir.
    fresh = Command((f"systemctl stop {service}", f"rm -rf {DATA}/default {DATA}/member"),
                    f"systemctl is-active --quiet {service}",
                    what=f"stop etcd and empty {DATA} for the new cluster configuration")
    return [Step("etcd-config", "controller-services", (controller.name,),
                 (FileSpec(ETCD_DEFAULTS, etcd_env(controller.name, controller.private_ip)), fresh,
                  Service((service,))), guide=guide.ETCD)]
