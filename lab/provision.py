"""`lab up` against EC2: find what exists by tag, create only what is missing, write the inventory.

Order: key pair and security group; the missing instances and the missing volumes at the
same time (a volume only needs its node's zone, known before launch); wait for both; attach; DeleteOnTermination;
inventory and ssh_config. Every step starts from what discovery found, so an `up` that
stopped anywhere is finished by the next one, and a complete lab makes `up` a no-op.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from lab import instances, keypair, network, security_group, volumes
from lab.config import LabSpec
from lab.discovery import LabResources, find_lab
from lab.sshconfig import write_ssh_config
from lab.target import Target
from labcore.errors import CloudStateError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord, save_inventory
from labcore.paths import LabPaths

Progress = Callable[[str], None]


@dataclass
class UpReport:
    inventory: Inventory | None = None
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def up(spec: LabSpec, target: Target, paths: LabPaths, *, progress: Progress,
       resolve_caller: Callable[[str], str] | None = None) -> UpReport:
    """resolve_caller: the caller's address for `allow_from: [auto]` (default: the target's)."""
    ec2 = target.ec2_client(spec.region)
    report = UpReport()
    found = find_lab(ec2, spec.name)
    report.existing = _existing_labels(found)
    subnet = _subnet_of(ec2, spec, found)
    ssh_cidrs = network.ssh_sources(spec, subnet.cidr, resolve_caller or target.caller_cidr)
    progress(f"lab {spec.name} in {spec.region} ({subnet.subnet_id} {subnet.cidr}, {subnet.az}); "
             f"SSH allowed from {', '.join(ssh_cidrs)}")
    report.created += keypair.ensure_key_pair(ec2, spec.name, paths.key_file, found, spec.tags, progress)
    group_id, created = security_group.ensure_security_group(ec2, spec, subnet, ssh_cidrs, found, progress)
    report.created += created
    ids = _ensure_instances_and_volumes(ec2, spec, target, subnet, group_id, found, report, progress)
    marked = volumes.delete_on_termination(ec2, list(ids.values()))
    if marked:
        progress(f"volumes of {len(marked)} instances set to be deleted with their instance")
    report.inventory = _inventory(ec2, spec, target, paths, subnet)
    save_inventory(report.inventory, paths.inventory)
    write_ssh_config(report.inventory, paths, target.strict_host_keys)
    progress(f"inventory written to {paths.inventory}, ssh config to {paths.ssh_config}")
    return report


def _subnet_of(ec2, spec: LabSpec, found: LabResources) -> network.Subnet:
    """Where the lab already is, or where it will be."""
    subnet = network.choose_subnet(ec2, spec)
    existing = {i.subnet_id for i in found.instances if i.subnet_id}
    if existing and subnet.subnet_id not in existing and not spec.subnet:
        raise CloudStateError(f"lab {spec.name} already runs in {sorted(existing)[0]}, not {subnet.subnet_id}; "
                              f"set `subnet:` to it or run `lab down` first")
    return subnet


def _ensure_instances_and_volumes(ec2, spec, target, subnet, group_id, found, report, progress) -> dict[str, str]:
    """Launch the missing nodes and create the missing volumes at once, then attach what is loose."""
    ids = {i.node: i.instance_id for i in found.instances if i.node in spec.nodes}
    for stray in (i for i in found.instances if i.node not in spec.nodes):
        progress(f"instance {stray.instance_id} (node {stray.node}) is not in the config: left alone; "
                 f"`lab down` removes it")
    zones = {i.node: i.az for i in found.instances}
    missing_nodes = [n for n in spec.nodes if n not in ids]
    wanted = volumes.wanted_volumes(spec)
    have = {(v.node, v.name): v for v in found.volumes}
    missing_volumes = [v for v in wanted if (v.node, v.name) not in have]
    image = target.find_image(ec2, spec) if missing_nodes else None
    if missing_nodes:
        progress(f"launching {len(missing_nodes)} instances in parallel from {image.image_id}: "
                 f"{', '.join(missing_nodes)}")
    if missing_volumes:
        progress(f"creating {len(missing_volumes)} volumes, each in its node's availability zone")
    # A new node lands in the subnet's zone, so its volumes need not wait for the instance.
    zone_of = {v: zones.get(v.node, subnet.az) for v in missing_volumes}
    with ThreadPoolExecutor(max_workers=2) as pool:
        launched = pool.submit(instances.launch, ec2, spec, missing_nodes, image, subnet, group_id)
        made = volumes.create(ec2, spec, missing_volumes, zone_of)
        new_ids = launched.result()
    ids.update(new_ids)
    report.created += [f"instance {n} ({i})" for n, i in new_ids.items()]
    report.created += [f"volume {n}/{v} ({vid})" for (n, v), vid in made.items()]
    progress(f"waiting for {len(ids)} instances to run")
    instances.wait_running(ec2, list(ids.values()), progress)
    _attach_loose(ec2, spec, wanted, have, made, ids, progress)
    return ids


def _attach_loose(ec2, spec, wanted, have, made, ids, progress) -> None:
    volume_ids = {key: v.volume_id for key, v in have.items()} | made
    to_attach = []
    for v in wanted:
        current = have.get((v.node, v.name))
        if current is not None and current.instance_id not in (None, ids[v.node]):
            raise CloudStateError(f"volume {v.node}/{v.name} ({current.volume_id}) is attached to "
                                  f"{current.instance_id}, not to {v.node} ({ids[v.node]}); "
                                  f"run `lab down` and `lab up` again")
        if current is None or current.instance_id is None:
            to_attach.append((volume_ids[(v.node, v.name)], ids[v.node], v.device))
    if to_attach:
        progress(f"attaching {len(to_attach)} volumes")
        volumes.wait_available(ec2, [a[0] for a in to_attach])
        volumes.attach(ec2, to_attach)


def _inventory(ec2, spec: LabSpec, target: Target, paths: LabPaths, subnet) -> Inventory:
    found = find_lab(ec2, spec.name)
    nodes = []
    for name, node_spec in spec.nodes.items():
        inst = found.instance(name)
        vols = found.volumes_of(name)
        devices = {v.name: v.device for v in volumes.wanted_volumes(spec) if v.node == name}
        ssh_host = inst.private_ip if target.ssh_via_private_ip else (inst.public_ip or inst.private_ip)
        nodes.append(NodeRecord(
            name=name, role=node_spec.role, instance_id=inst.instance_id, instance_type=inst.instance_type,
            az=inst.az, private_ip=inst.private_ip, public_ip=inst.public_ip, ssh_host=ssh_host,
            ssh_user=inst.ssh_user or spec.ssh_user,
            volumes=[VolumeRecord(name=v, volume_id=vols[v].volume_id, size_gb=vols[v].size_gb,
                                  device=devices[v]) for v in node_spec.volumes]))
    return Inventory(lab=spec.name, target=target.name, region=spec.region,
                     os=target.host_os or spec.openstack.os, release=spec.openstack.release,
                     subnet_cidr=subnet.cidr, key_file=str(paths.key_file.resolve()),
                     known_hosts=str(paths.known_hosts.resolve()), nodes=nodes)


def _existing_labels(found: LabResources) -> list[str]:
    return ([f"instance {i.node} ({i.instance_id})" for i in found.instances]
            + [f"volume {v.node}/{v.name} ({v.volume_id})" for v in found.volumes if v.name != "root"]
            + [f"security group {g.group_id}" for g in found.security_groups]
            + [f"key pair {k.key_name}" for k in found.key_pairs])
