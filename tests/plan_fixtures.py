"""The guide's layout as an Inventory (controller 10.0.0.11, object1 .51, object2 .52), for plan tests."""

from __future__ import annotations

from bootstrap.context import PlanContext
from bootstrap.plan import Plan, Step
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.secrets import generate

IPS = {"controller": "10.0.0.11", "object1": "10.0.0.51", "object2": "10.0.0.52"}


def node(name: str, role: str, volumes: tuple[str, ...] = ()) -> NodeRecord:
    ip = IPS[name]
    return NodeRecord(name=name, role=role, instance_id=f"i-{name}", instance_type="t3.medium", az="ap-northeast-2a",
                      private_ip=ip, ssh_host=ip, ssh_user="ubuntu",
                      volumes=[VolumeRecord(name=v, volume_id=f"vol-{name}-{v}", size_gb=10, device=f"/dev/sd{v[-1]}")
                               for v in volumes])


def inventory(os_name: str = "ubuntu-18.04", volumes: tuple[str, ...] = ("sdb", "sdc")) -> Inventory:
    target = "aws" if os_name.startswith("ubuntu") else "sim"
    return Inventory(lab="rocky-lab", target=target, region="ap-northeast-2", os=os_name, release="rocky",
                     subnet_cidr="10.0.0.0/24", key_file="k", known_hosts="h",
                     nodes=[node("controller", "controller"), node("object1", "object", volumes),
                            node("object2", "object", volumes)])


def context(os_name: str = "ubuntu-18.04") -> PlanContext:
    return PlanContext.for_inventory(inventory(os_name), generate())


def step_named(plan: Plan, name: str, host: str) -> Step:
    return next(s for s in plan.for_host(host) if s.name == name)


def file_on(plan: Plan, host: str, path: str) -> str:
    contents = [f.content for s in plan.for_host(host) for f in s.files if f.path == path]
    assert len(contents) == 1, f"{path} planned {len(contents)} times on {host}"
    return contents[0]
