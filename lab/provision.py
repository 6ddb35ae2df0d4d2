"""`lab up` against EC2: find what exists by tag, create only what is missing, write the inventory.

Order: where new nodes may go (the zones that offer every instance type of the lab,
lab/placement.py; with `subnet:`, that it routes to an internet gateway) and which image they
boot, all before anything is created, so bad input is exit 2 with nothing made; key pair
and security group; the missing instances, each with its Swift volumes as block device mappings (they go wherever capacity puts the node), and at
the same time the volumes added to nodes that run already (CreateVolume in the node's zone);
a look again by tag that keeps one instance per node and one volume per device
(lab/duplicates.py); wait for the instances; lab:volume on the launches' volumes, one
CreateTags per name (lab/volumes.py); attach the created volumes; DeleteOnTermination;
inventory and ssh_config. Every step starts from what discovery found, so an `up` that
stopped anywhere is finished by the next one, and a complete lab makes `up` a no-op.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from lab import duplicates, instances, keypair, network, security_group, shrink, volumes
from lab.config import LabSpec
from lab.discovery import FoundInstance, FoundVolume, LabResources, find_lab, find_nodes
from lab.duplicates import GONE_VOLUME, live_volumes
from lab.ec2 import with_retry
from lab.expiry import ExpiryPlan, plan_expiry, tag_value
from lab.placement import Placement, plan_placement
from lab.retag import set_expiry_tags
from lab.sshconfig import write_ssh_config
from lab.target import Target
from labcore import tags as tag
from labcore.errors import CloudError, CloudStateError
from labcore.inventory import Inventory, NodeRecord, VolumeRecord, save_inventory
from labcore.paths import LabPaths

Progress = Callable[[str], None]
LISTED_ROUNDS = 15  # looks again, volumes.POLL_SECONDS apart, for a launch's volumes EC2 does not list yet


@dataclass
class UpReport:
    inventory: Inventory | None = None
    expiry: ExpiryPlan | None = None
    ssh_sources: list[str] = field(default_factory=list)  # what the security group lets SSH in from
    https_sources: list[str] = field(default_factory=list)  # ... and HTTPS (443, the front door); none: TempAuth
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def up(spec: LabSpec, target: Target, paths: LabPaths, *, progress: Progress,
       resolve_caller: Callable[[str], str] | None = None) -> UpReport:
    """resolve_caller: the caller's address for `allow_from: [auto]` (default: the target's)."""
    ec2 = target.ec2_client(spec.region)
    report = UpReport()
    found = find_lab(ec2, spec.name, volumes.device_names(spec))
    found = shrink.reconcile(ec2, spec, found, progress)  # out of the config: drained ones removed, others said
    report.existing = _existing_labels(found)
    report.expiry = plan_expiry(spec.expiry, spec.expires_after, found.expiry_tags)
    spec = spec.with_lab_tags(report.expiry.tags())  # every resource made from here on carries them
    if report.expiry.moved:
        set_expiry_tags(ec2, list(found.expiry_tags), report.expiry.tags(), progress)
    placement = plan_placement(ec2, spec, found)
    if spec.subnet and not target.ssh_via_private_ip:  # SSH comes from outside the VPC, by a public address
        network.require_internet_route(ec2, spec, placement.first)
        if spec.https_allow_from:  # a front door, reached by the controller's public DNS name
            network.require_vpc_dns(ec2, placement.first)
    missing = [n for n in spec.nodes if found.instance(n) is None]
    image = target.find_image(ec2, spec) if missing else None
    first = placement.first
    caller = functools.cache(resolve_caller or target.caller_cidr)  # `auto` in ssh and https: one lookup
    ssh_cidrs = report.ssh_sources = network.ssh_sources(spec, first.cidr, caller)
    https_cidrs = report.https_sources = network.https_sources(spec, first.cidr, caller)
    later = [s.az for s in placement.subnets[1:]]
    progress(f"lab {spec.name} in {spec.region} ({first.subnet_id} {first.cidr}, {first.az}"
             + (f"; then {', '.join(later)} if {first.az} has no capacity" if later else "")
             + f"); SSH allowed from {', '.join(ssh_cidrs)}"
             + (f"; HTTPS (443, the front door) from {', '.join(https_cidrs)}" if https_cidrs else
                "; no HTTPS front door (auth: tempauth)"))
    report.created += keypair.ensure_key_pair(ec2, spec.name, paths.key_file, found, spec.resource_tags, progress)
    group_id, created = security_group.ensure_security_group(ec2, spec, placement.vpc_id, ssh_cidrs, found, progress,
                                                             https_cidrs=https_cidrs)
    report.created += created
    found = duplicates.remove_duplicates(ec2, found, progress)  # left by an earlier run that stopped
    nodes = _ensure_instances_and_volumes(ec2, spec, placement, image, group_id, found, report, progress)
    _retag_ssh_user(ec2, spec, nodes, progress)
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
    """Launch the missing nodes with their volumes and create the volumes added to running nodes,
    at once; one of each kept; the launches' volumes tagged; the created ones attached."""
    nodes = {i.node: i for i in found.instances if i.node in spec.nodes}
    have = {(v.node, v.name): v for v in live_volumes(found)}
    wanted = volumes.wanted_volumes(spec)
    launched, made = _launch_and_create(ec2, spec, placement, image, group_id, nodes, have, wanted, progress)
    # The volumes each launch made with its instance: listed by tag once EC2 shows them.
    with_launch = {(v.node, v.name) for v in wanted if v.node in launched and (v.node, v.name) not in have}
    latest = found
    if launched or made:
        latest = duplicates.remove_duplicates(ec2, duplicates.with_unseen(
            find_nodes(ec2, spec.name, volumes.device_names(spec)),
            [_launched(spec, one) for one in launched.values()], list(made.values())), progress)
        nodes, have = _kept(spec, latest)
    # A node this run launched is reported with the instance kept for it (maybe a twin launch's).
    report.created += [f"instance {n} ({nodes[n].instance_id})" for n in launched]
    if all(i.state == "running" for i in nodes.values()):
        progress(f"{len(nodes)} instances running")  # as the lookup just showed: no need to ask again
    else:
        progress(f"waiting for {len(nodes)} instances to run")
        instances.wait_running(ec2, [i.instance_id for i in nodes.values()], progress)
    latest, nodes, have = _until_listed(ec2, spec, with_launch, latest, nodes, have, progress)
    fresh = {v.volume_id for v in made.values()} | {have[k].volume_id for k in with_launch if k in have}
    report.created += [f"volume {v.node}/{v.name} ({v.volume_id})" for v in have.values() if v.volume_id in fresh]
    _tag_launch_volumes(ec2, spec, latest, nodes, progress)
    _in_their_nodes_zone(wanted, nodes, have)
    _attach_loose(ec2, wanted, have, nodes, progress)
    return nodes


def _retag_ssh_user(ec2, spec: LabSpec, nodes: dict[str, FoundInstance], progress) -> None:
    """A user the config names wins over the lab:ssh-user an instance was launched with, and
    the tag follows it (one CreateTags), so every later command and checkout logs in as it."""
    if spec.ssh.user is None:
        return
    stale = sorted(i.instance_id for i in nodes.values() if i.ssh_user != spec.ssh.user)
    if stale:
        with_retry(ec2.create_tags, Resources=stale, Tags=[{"Key": tag.SSH_USER, "Value": spec.ssh.user}],
                   retry_not_found=True)
        progress(f"lab:ssh-user set to {spec.ssh.user} (ssh.user in the config) on {len(stale)} instances")


def _kept(spec: LabSpec, found: LabResources) -> tuple[dict[str, FoundInstance], dict[tuple[str, str], FoundVolume]]:
    """The configured nodes' instances and the Swift volumes, by (node, name), of what a look found."""
    return ({i.node: i for i in found.instances if i.node in spec.nodes},
            {(v.node, v.name): v for v in live_volumes(found)})


def _until_listed(ec2, spec: LabSpec, expected: set[tuple[str, str]], latest: LabResources,
                  nodes: dict[str, FoundInstance], have: dict[tuple[str, str], FoundVolume], progress):
    """Look again (bounded) until every volume a launch made shows on its node's instance: EC2 may
    list them only once the instance runs. Usually they show at the first look: no call at all."""
    def missing(nodes, have) -> list[str]:
        return sorted(f"{n}/{name}" for n, name in expected
                      if n not in nodes or have.get((n, name)) is None
                      or have[(n, name)].instance_id != nodes[n].instance_id)

    for _ in range(LISTED_ROUNDS):
        if not missing(nodes, have):
            break
        time.sleep(volumes.POLL_SECONDS)
        latest = duplicates.remove_duplicates(ec2, find_nodes(ec2, spec.name, volumes.device_names(spec)),
                                              progress)
        nodes, have = _kept(spec, latest)
    if missing(nodes, have):
        raise CloudError(f"EC2 does not list the volumes launched with their instances yet "
                         f"({', '.join(missing(nodes, have))}); run `lab up` again (it tags them once listed)")
    return latest, nodes, have


def _tag_launch_volumes(ec2, spec: LabSpec, found: LabResources, nodes: dict[str, FoundInstance],
                        progress) -> None:
    """lab:volume on each volume a launch made (this run's, or an earlier run's that stopped before
    tagging): one CreateTags per name across all nodes. Only volumes on the kept instances, named
    by their device (lab/discovery.py); a volume at a device the config does not map is left."""
    names = {(v.node, v.name) for v in volumes.wanted_volumes(spec)}
    untagged = [(v.volume_id, v.name) for v in found.volumes
                if not v.tagged and v.state not in GONE_VOLUME and v.node in nodes
                and v.instance_id == nodes[v.node].instance_id
                and (v.name == tag.ROOT_VOLUME or (v.node, v.name) in names)]
    if not untagged:
        return
    batches = volumes.tag_names(ec2, untagged)
    progress(f"{len(untagged)} volumes made with their instances tagged with their names in {len(batches)} calls ("
             + ", ".join(f"{name}: {len(ids)}" for name, ids in batches.items()) + ")")


def _launch_and_create(ec2, spec: LabSpec, placement: Placement, image, group_id: str,
                       nodes: dict[str, FoundInstance], have: dict[tuple[str, str], FoundVolume], wanted,
                       progress) -> tuple[dict[str, instances.Launched], dict[tuple[str, str], FoundVolume]]:
    """The missing instances, each with its missing volumes, and beside them the volumes missing
    on nodes that run already, created in their node's zone; the launched, the created."""
    missing_volumes = [v for v in wanted if (v.node, v.name) not in have]
    # A new node starts where its volumes already are, if they are (left by an earlier run); else in the first zone.
    orders = {n: placement.order_for(next((v.az for (node, _), v in have.items() if node == n), None))
              for n in spec.nodes if n not in nodes}
    with_node = {n: [v for v in missing_volumes if v.node == n] for n in orders}
    to_create = [v for v in missing_volumes if v.node in nodes]
    zone_of = {v: nodes[v.node].az for v in to_create}
    if orders:
        count = sum(len(vs) for vs in with_node.values())
        progress(f"launching {len(orders)} instances in parallel from {image.image_id}"
                 f"{f' ({image.name})' if image.name else ''}: {', '.join(orders)}"
                 + (f"; with their {count} Swift volumes" if count else ""))
    if to_create:
        progress(f"creating {len(to_create)} volumes for nodes that run already, each in its node's availability zone")
    with ThreadPoolExecutor(max_workers=2) as pool:
        launching = pool.submit(instances.launch, ec2, spec, orders, image, group_id, progress, with_node)
        made = volumes.create(ec2, spec, to_create, zone_of)
        launched = launching.result()
    return launched, {(v.node, v.name): _made(v, made[(v.node, v.name)], zone_of[v]) for v in to_create}


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


def _in_their_nodes_zone(wanted, nodes: dict[str, FoundInstance], have: dict[tuple[str, str], FoundVolume]) -> None:
    """A volume attaches only in its zone. Those made here always are (with their instance, or in
    its zone); one an earlier run left for a node that capacity has since put elsewhere is not."""
    for w in wanted:
        volume, node = have.get((w.node, w.name)), nodes[w.node]
        if volume is not None and volume.az != node.az:
            raise CloudStateError(f"volume {w.node}/{w.name} ({volume.volume_id}) is in {volume.az}, but {w.node} "
                                  f"runs in {node.az} and a volume attaches only in its zone; if it holds nothing, "
                                  f"delete it (aws ec2 delete-volume --volume-id {volume.volume_id}) and run "
                                  f"`lab up` again, else `lab down`")


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
    found = find_lab(ec2, spec.name, volumes.device_names(spec))  # a volume just tagged may not show it yet
    # What the config no longer has but still holds Swift data: `lab install` drains it (lab/shrink.py).
    leaving_nodes, leaving_volumes = shrink.leaving_records(spec, found, target.ssh_via_private_ip)
    nodes = []
    for name, node_spec in spec.nodes.items():
        inst = found.instance(name)
        vols = {v.name: v for v in live_volumes(found) if v.node == name}
        devices = {v.name: v.device for v in volumes.wanted_volumes(spec) if v.node == name}
        ssh_host = inst.private_ip if target.ssh_via_private_ip else (inst.public_ip or inst.private_ip)
        nodes.append(NodeRecord(
            name=name, role=node_spec.role, instance_id=inst.instance_id, instance_type=inst.instance_type,
            az=inst.az, private_ip=inst.private_ip, public_ip=inst.public_ip, ssh_host=ssh_host,
            # A twin's host is reached by its private address: the public name moto makes up leads nowhere.
            public_dns=None if target.ssh_via_private_ip else inst.public_dns,
            ssh_user=spec.ssh.user or inst.ssh_user or spec.ssh_user,
            volumes=[VolumeRecord(name=v, volume_id=vols[v].volume_id, size_gb=vols[v].size_gb,
                                  device=devices[v]) for v in node_spec.volumes] + leaving_volumes.get(name, [])))
    # The management network (chrony's `allow`) covers every node, also when they span zones.
    cidrs = [placement.cidr_of(found.instance(n).subnet_id) for n in spec.nodes]
    return Inventory(lab=spec.name, target=target.name, region=spec.region,
                     os=target.host_os or spec.openstack.os, release=spec.openstack.release, auth=spec.auth,
                     swift_pipeline=spec.swift.pipeline,
                     subnet_cidr=network.management_network(cidrs), key_file=str(paths.key_file.resolve()),
                     known_hosts=str(paths.known_hosts.resolve()), nodes=nodes + leaving_nodes,
                     expires_at=tag_value(expiry.expires_at) if expiry.expires_at else None)


def _existing_labels(found: LabResources) -> list[str]:
    return ([f"instance {i.node} ({i.instance_id})" for i in found.instances]
            + [f"volume {v.node}/{v.name} ({v.volume_id})" for v in found.volumes if v.name != "root"]
            + [f"security group {g.group_id}" for g in found.security_groups]
            + [f"key pair {k.key_name}" for k in found.key_pairs])
