"""`lab up` against EC2: find what exists by tag, create only what is missing, write the inventory.

Order: where new nodes may go (the zones that offer every instance type of the lab,
lab/placement.py) and which image they boot, both before anything is created, so bad input
is exit 2 with nothing made; key pair and security group; the missing instances and the
missing volumes at the same time (a volume only needs its node's zone, known before the
launch in the usual case); a look again by tag that keeps one instance per node and one
volume per device (lab/duplicates.py); wait for the instances; the volumes of a node that
capacity moved to another zone made again there; attach; DeleteOnTermination; inventory and
ssh_config. Every step starts from what discovery found, so an `up` that stopped anywhere is
finished by the next one, and a complete lab makes `up` a no-op.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from lab import duplicates, instances, keypair, network, security_group, volumes
from lab.config import LabSpec
from lab.discovery import FoundInstance, FoundVolume, LabResources, find_lab, find_nodes
from lab.duplicates import live_volumes
from lab.ec2 import with_retry
from lab.expiry import ExpiryPlan, plan_expiry, tag_value
from lab.placement import Placement, plan_placement
from lab.retag import set_expiry_tags
from lab.sshconfig import write_ssh_config
from lab.target import Target
from labcore.errors import CloudError, CloudStateError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord, save_inventory
from labcore.paths import LabPaths

Progress = Callable[[str], None]


@dataclass
class UpReport:
    inventory: Inventory | None = None
    expiry: ExpiryPlan | None = None
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def up(spec: LabSpec, target: Target, paths: LabPaths, *, progress: Progress,
       resolve_caller: Callable[[str], str] | None = None) -> UpReport:
    """resolve_caller: the caller's address for `allow_from: [auto]` (default: the target's)."""
    ec2 = target.ec2_client(spec.region)
    report = UpReport()
    found = find_lab(ec2, spec.name)
    report.existing = _existing_labels(found)
    report.expiry = plan_expiry(spec.expiry, spec.expires_after, found.expiry_tags)
    spec = spec.with_lab_tags(report.expiry.tags())  # every resource made from here on carries them
    if report.expiry.moved:
        set_expiry_tags(ec2, list(found.expiry_tags), report.expiry.tags(), progress)
    placement = plan_placement(ec2, spec, found)
    missing = [n for n in spec.nodes if found.instance(n) is None]
    image = target.find_image(ec2, spec) if missing else None
    first = placement.first
    ssh_cidrs = network.ssh_sources(spec, first.cidr, resolve_caller or target.caller_cidr)
    later = [s.az for s in placement.subnets[1:]]
    progress(f"lab {spec.name} in {spec.region} ({first.subnet_id} {first.cidr}, {first.az}"
             + (f"; then {', '.join(later)} if {first.az} has no capacity" if later else "")
             + f"); SSH allowed from {', '.join(ssh_cidrs)}")
    report.created += keypair.ensure_key_pair(ec2, spec.name, paths.key_file, found, spec.resource_tags, progress)
    group_id, created = security_group.ensure_security_group(ec2, spec, placement.vpc_id, ssh_cidrs, found, progress)
    report.created += created
    found = duplicates.remove_duplicates(ec2, found, progress)  # left by an earlier run that stopped
    nodes = _ensure_instances_and_volumes(ec2, spec, placement, image, group_id, found, report, progress)
    marked = volumes.delete_on_termination(ec2, [i.instance_id for i in nodes.values()])
    if marked:
        progress(f"volumes of {len(marked)} instances set to be deleted with their instance")
    report.inventory = _inventory(ec2, spec, target, paths, placement, report.expiry)
    save_inventory(report.inventory, paths.inventory)
    write_ssh_config(report.inventory, paths, target.strict_host_keys)
    progress(f"inventory written to {paths.inventory}, ssh config to {paths.ssh_config}")
    return report


def _ensure_instances_and_volumes(ec2, spec: LabSpec, placement: Placement, image, group_id: str,
                                  found: LabResources, report: UpReport, progress) -> dict[str, FoundInstance]:
    """Launch the missing nodes and create the missing volumes at once; one of each kept; attach."""
    for stray in (i for i in found.instances if i.node not in spec.nodes):
        progress(f"instance {stray.instance_id} (node {stray.node}) is not in the config: left alone; "
                 f"`lab down` removes it")
    nodes = {i.node: i for i in found.instances if i.node in spec.nodes}
    have = {(v.node, v.name): v for v in live_volumes(found)}
    wanted = volumes.wanted_volumes(spec)
    launched, made = _launch_and_create(ec2, spec, placement, image, group_id, nodes, have, wanted, progress)
    if launched or made:
        again = duplicates.remove_duplicates(ec2, duplicates.with_unseen(
            find_nodes(ec2, spec.name), [_launched(spec, one) for one in launched.values()], list(made.values())),
            progress)
        nodes = {i.node: i for i in again.instances if i.node in spec.nodes}
        have = {(v.node, v.name): v for v in live_volumes(again)}
    # A node this run launched is reported with the instance kept for it (maybe a twin launch's).
    report.created += [f"instance {n} ({nodes[n].instance_id})" for n in launched]
    if all(i.state == "running" for i in nodes.values()):
        progress(f"{len(nodes)} instances running")  # as the lookup just showed: no need to ask again
    else:
        progress(f"waiting for {len(nodes)} instances to run")
        instances.wait_running(ec2, [i.instance_id for i in nodes.values()], progress)
    fresh = {v.volume_id for v in made.values()}
    fresh |= _remake_in_their_nodes_zone(ec2, spec, wanted, nodes, have, fresh, progress)
    report.created += [f"volume {v.node}/{v.name} ({v.volume_id})" for v in have.values() if v.volume_id in fresh]
    _attach_loose(ec2, wanted, have, nodes, progress)
    return nodes


def _launch_and_create(ec2, spec: LabSpec, placement: Placement, image, group_id: str,
                       nodes: dict[str, FoundInstance], have: dict[tuple[str, str], FoundVolume], wanted,
                       progress) -> tuple[dict[str, instances.Launched], dict[tuple[str, str], FoundVolume]]:
    """The missing instances and the missing volumes, side by side; a volume goes to its node's
    zone, or for a node not launched yet to the first zone of its order (where it usually lands)."""
    missing_volumes = [v for v in wanted if (v.node, v.name) not in have]
    # A new node starts where its volumes already are, if they are; else in the first zone.
    orders = {n: placement.order_for(next((v.az for (node, _), v in have.items() if node == n), None))
              for n in spec.nodes if n not in nodes}
    zone_of = {v: nodes[v.node].az if v.node in nodes else orders[v.node][0].az for v in missing_volumes}
    if orders:
        progress(f"launching {len(orders)} instances in parallel from {image.image_id}"
                 f"{f' ({image.name})' if image.name else ''}: {', '.join(orders)}")
    if missing_volumes:
        progress(f"creating {len(missing_volumes)} volumes, each in its node's availability zone")
    with ThreadPoolExecutor(max_workers=2) as pool:
        launching = pool.submit(instances.launch, ec2, spec, orders, image, group_id, progress)
        made = volumes.create(ec2, spec, missing_volumes, zone_of)
        launched = launching.result()
    return launched, {(v.node, v.name): _made(v, made[(v.node, v.name)], zone_of[v]) for v in missing_volumes}


def _launched(spec: LabSpec, one: instances.Launched) -> FoundInstance:
    """An instance this run launched, as a tag lookup would show it."""
    node_spec = spec.nodes[one.node]
    return FoundInstance(node=one.node, role=node_spec.role, instance_id=one.instance_id,
                         instance_type=node_spec.type, state="pending", az=one.subnet.az, private_ip=None,
                         public_ip=None, ssh_user=spec.ssh_user, subnet_id=one.subnet.subnet_id,
                         launch_time=one.launch_time)


def _made(v: volumes.WantedVolume, volume_id: str, az: str) -> FoundVolume:
    """A volume this run created, as a tag lookup would show it (its creation time unknown here)."""
    return FoundVolume(node=v.node, name=v.name, volume_id=volume_id, state="creating", size_gb=v.size_gb,
                       az=az, instance_id=None, device=None)


def _remake_in_their_nodes_zone(ec2, spec: LabSpec, wanted, nodes: dict[str, FoundInstance],
                                have: dict[tuple[str, str], FoundVolume], fresh: set[str], progress) -> set[str]:
    """Volumes made in the planned zone for a node that capacity moved: deleted and made again
    in the node's zone (they are this run's own, never attached: nothing can be on them).
    Updates have; the ids of the new volumes."""
    moved = []
    for w in wanted:
        volume, node = have.get((w.node, w.name)), nodes[w.node]
        if volume is None or volume.az == node.az:
            continue
        if volume.volume_id not in fresh or volume.instance_id is not None:
            raise CloudStateError(f"volume {w.node}/{w.name} ({volume.volume_id}) is in {volume.az}, but {w.node} "
                                  f"runs in {node.az} and a volume attaches only in its zone; if it holds nothing, "
                                  f"delete it (aws ec2 delete-volume --volume-id {volume.volume_id}) and run "
                                  f"`lab up` again, else `lab down`")
        moved.append(w)
    if not moved:
        return set()
    progress(f"{len(moved)} volumes were made before their nodes moved zone for capacity: making them again "
             f"in their nodes' zones ({', '.join(sorted({nodes[w.node].az for w in moved}))})")
    for w in moved:
        with_retry(duplicates.delete_volume, ec2, have[(w.node, w.name)].volume_id)
    zones = {w: nodes[w.node].az for w in moved}
    remade = volumes.create(ec2, spec, moved, zones)
    for w in moved:
        have[(w.node, w.name)] = _made(w, remade[(w.node, w.name)], zones[w])
    return set(remade.values())


def _attach_loose(ec2, wanted, have: dict[tuple[str, str], FoundVolume], nodes: dict[str, FoundInstance],
                  progress) -> None:
    to_attach = []
    for v in wanted:
        current, instance_id = have.get((v.node, v.name)), nodes[v.node].instance_id
        if current is None:
            raise CloudError(f"volume {v.node}/{v.name} vanished while `lab up` ran; run `lab up` again")
        if current.instance_id not in (None, instance_id):
            raise CloudStateError(f"volume {v.node}/{v.name} ({current.volume_id}) is attached to "
                                  f"{current.instance_id}, not to {v.node} ({instance_id}); "
                                  f"run `lab down` and `lab up` again")
        if current.instance_id is None:
            to_attach.append((current.volume_id, instance_id, v.device))
    if to_attach:
        progress(f"attaching {len(to_attach)} volumes")
        volumes.wait_available(ec2, [a[0] for a in to_attach])
        volumes.attach(ec2, to_attach)


def _inventory(ec2, spec: LabSpec, target: Target, paths: LabPaths, placement: Placement,
               expiry: ExpiryPlan) -> Inventory:
    found = find_lab(ec2, spec.name)
    nodes = []
    for name, node_spec in spec.nodes.items():
        inst = found.instance(name)
        vols = {v.name: v for v in live_volumes(found) if v.node == name}
        devices = {v.name: v.device for v in volumes.wanted_volumes(spec) if v.node == name}
        ssh_host = inst.private_ip if target.ssh_via_private_ip else (inst.public_ip or inst.private_ip)
        nodes.append(NodeRecord(
            name=name, role=node_spec.role, instance_id=inst.instance_id, instance_type=inst.instance_type,
            az=inst.az, private_ip=inst.private_ip, public_ip=inst.public_ip, ssh_host=ssh_host,
            ssh_user=inst.ssh_user or spec.ssh_user,
            volumes=[VolumeRecord(name=v, volume_id=vols[v].volume_id, size_gb=vols[v].size_gb,
                                  device=devices[v]) for v in node_spec.volumes]))
    # The management network (chrony's `allow`) covers every node, also when they span zones.
    cidrs = [placement.cidr_of(found.instance(n).subnet_id) for n in spec.nodes]
    return Inventory(lab=spec.name, target=target.name, region=spec.region,
                     os=target.host_os or spec.openstack.os, release=spec.openstack.release,
                     subnet_cidr=network.management_network(cidrs), key_file=str(paths.key_file.resolve()),
                     known_hosts=str(paths.known_hosts.resolve()), nodes=nodes,
                     expires_at=tag_value(expiry.expires_at) if expiry.expires_at else None)


def _existing_labels(found: LabResources) -> list[str]:
    return ([f"instance {i.node} ({i.instance_id})" for i in found.instances]
            + [f"volume {v.node}/{v.name} ({v.volume_id})" for v in found.volumes if v.name != "root"]
            + [f"security group {g.group_id}" for g in found.security_groups]
            + [f"key pair {k.key_name}" for k in found.key_pairs])
