"""The guide's layout as an Inventory (controller 10.0.0.11, object1 .51, object2 .52),
helpers to look into a plan, and `converged(plan, host)`: a FakeHost on which everything
the plan wants is already so (a lab fresh from `lab install`), for every test that needs
a lab without a cloud."""

from __future__ import annotations

import configparser
import json
import subprocess

import pytest
from fakes import IMAGE_HOSTS, FakeHost

from bootstrap.actions import Block, Command, CopySpec, FileSpec, OpenStack, Packages, Reboot, Ring, Service, Sql, Wait
from bootstrap.changes import Run, WaitFor, Write
from bootstrap.context import PlanContext
from bootstrap.decide import Context, decide_step, facts_for
from bootstrap.facts import CheckFact, Output, OutputFact, UnitState, absent_answers
from bootstrap.plan import Plan, Step
from bootstrap.planner import build_plan
from bootstrap.render import write_command, write_in_place_command
from lab.hostsfile import merge_block
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.remote import RunResult
from labcore.secrets import Secrets, generate

# The guide's Swift server ports, as the tests expect them (not read from the code under test).
PORTS = {"account": 6202, "container": 6201, "object": 6200}
IPS = {"controller": "10.0.0.11", "object1": "10.0.0.51", "object2": "10.0.0.52"}
SECRET = "5ecret-5ecret-5ecret"  # the one secret of the runner's tests: never in what they show
SECRETS = Secrets({"admin_pass": SECRET})


def node(name: str, role: str, volumes: tuple[str, ...] = ()) -> NodeRecord:
    ip = IPS[name]
    return NodeRecord(name=name, role=role, instance_id=f"i-{name}", instance_type="t3.medium", az="ap-northeast-2a",
                      private_ip=ip, ssh_host=ip, ssh_user="ubuntu",
                      volumes=[VolumeRecord(name=v, volume_id=f"vol-{name}-{v}", size_gb=10,
                                            device=f"/dev/sd{'fghij'[i]}") for i, v in enumerate(volumes)])


def inventory(os_name: str = "ubuntu-18.04", volumes: tuple[str, ...] = ("sdb", "sdc"), *,
              swift_pipeline: str = "full") -> Inventory:
    target = "aws" if os_name.startswith("ubuntu") else "sim"
    return Inventory(lab="rocky-lab", target=target, region="ap-northeast-2", os=os_name, release="rocky",
                     subnet_cidr="10.0.0.0/24", key_file="k", known_hosts="h", swift_pipeline=swift_pipeline,
                     nodes=[node("controller", "controller"), node("object1", "object", volumes),
                            node("object2", "object", volumes)])


def context(os_name: str = "ubuntu-18.04", volumes: tuple[str, ...] = ("sdb", "sdc"), *,
            swift_pipeline: str = "full") -> PlanContext:
    return PlanContext.for_inventory(inventory(os_name, volumes, swift_pipeline=swift_pipeline), generate())


def plan_for(os_name: str = "ubuntu-18.04", volumes: tuple[str, ...] = ("sdb", "sdc"), *,
             swift_pipeline: str = "full") -> tuple[PlanContext, Plan]:
    ctx = context(os_name, volumes, swift_pipeline=swift_pipeline)
    return ctx, build_plan(ctx.inventory, ctx.secrets)


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def sh(command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a rendered command in a local POSIX shell, as a host would."""
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env)


@pytest.fixture(params=["ubuntu-18.04", "debian-12"])
def planned(request) -> tuple[PlanContext, Plan]:
    """The default lab's context and plan, once per profile."""
    return plan_for(request.param)


def base_phase(os_name: str) -> tuple[Plan, Inventory]:
    """The plan's base phase alone (what a host must be before anything is installed)."""
    inv = inventory(os_name)
    plan = build_plan(inv, generate())
    return Plan(tuple(s for s in plan.steps if s.phase == "base")), inv


def step_named(plan: Plan, name: str, host: str) -> Step:
    return next(s for s in plan.for_host(host) if s.name == name)


def file_on(plan: Plan, host: str, path: str) -> str:
    contents = [f.content for s in plan.for_host(host) for f in s.files if f.path == path]
    assert len(contents) == 1, f"{path} planned {len(contents)} times on {host}"
    return contents[0]


def actions(step: Step, kind: type) -> list:
    return [a for a in step.actions if isinstance(a, kind)]


def fresh_sends(step: Step) -> list:
    """What the step sends to a host where nothing is done yet (no file, no package, ...)."""
    facts = [f for a in step.actions for f in facts_for(a)]
    return list(decide_step(step.actions, absent_answers(facts), Context()).sends)


def rendered(step: Step) -> list[str]:
    """Every piece of shell the step may send: its facts, and its commands on a fresh host."""
    texts = [f.command() for a in step.actions for f in facts_for(a)]
    for send in fresh_sends(step):
        if isinstance(send, Run):
            texts.append(send.command)
        elif isinstance(send, Write):
            texts.append(write_in_place_command(send.path) if send.in_place else
                         write_command(send.path, send.mode, send.owner))
        elif isinstance(send, WaitFor):
            texts.append(send.wait.command(15))
    return texts


def fresh_commands(step: Step) -> list[str]:
    return [s.command for s in fresh_sends(step) if isinstance(s, Run)]


FIRST_BOOT_READY = {"os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)",
                           "matches": True}, "cloud_init": "absent", "locks": []}
RING_BYTES = b"\x1f\x8b ring"


def ring_facts(rings: list[Ring]) -> str:
    """What ring_facts.py prints for rings built exactly as planned."""
    found = {}
    for ring in rings:
        devs = [{"id": i, "region": d.region, "zone": d.zone, "ip": d.ip, "port": d.port, "device": d.device,
                 "weight": d.weight} for i, d in enumerate(ring.devices)]
        found[ring.name] = {"builder": {"part_power": ring.part_power, "replicas": float(ring.replicas),
                                        "min_part_hours": ring.min_part_hours, "devs_changed": False, "devs": devs},
                            "ring": {"part_power": ring.part_power, "replica_count": float(ring.replicas),
                                     "devs": devs}}
    return json.dumps(found)


def converged(plan, host: str) -> FakeHost:
    """A host where everything the plan asks of it is already so (a lab fresh from `lab install`)."""
    fake = FakeHost(host)
    fake.files["/etc/hosts"] = (IMAGE_HOSTS.encode(), 0o644, "root:root")
    rings: list[Ring] = []
    for step in plan.for_host(host):
        for action in step.actions:
            _converge(fake, action, rings)
    for ring in rings:
        for fact in facts_for(ring):
            fake.known[fact] = Output(0, ring_facts(rings))
        fake.files[f"{ring.swift_dir}/{ring.name}.ring.gz"] = (RING_BYTES + ring.name.encode(), 0o644, "root:swift")
    return fake


def _converge(fake: FakeHost, action, rings: list[Ring]) -> None:
    if isinstance(action, FileSpec):
        fake.files[action.path] = (action.content.encode(), action.mode, action.owner)
    elif isinstance(action, CopySpec):
        name = action.path.rsplit("/", 1)[-1].split(".")[0]
        fake.files[action.path] = (RING_BYTES + name.encode(), action.mode, action.owner)
    elif isinstance(action, Block):
        existing = fake.files[action.path][0].decode()
        fake.files[action.path] = (merge_block(existing, action.lines, action.marker, action.comment_out).encode(),
                                   0o644, "root:root")
    elif isinstance(action, Packages):
        fake.debs.update(action.names)
    elif isinstance(action, Service):
        fake.units.update({u: UnitState(True, True) for u in action.units})
    elif isinstance(action, Ring):
        rings.append(action)
    for fact in facts_for(action):
        if isinstance(fact, CheckFact):
            fake.known[fact] = True
        elif isinstance(fact, OutputFact) and fact not in fake.known:
            fake.known[fact] = _done_output(action)


def _done_output(action) -> Output:
    if isinstance(action, Sql):
        return Output(0, action.expect + "\n")
    if isinstance(action, OpenStack):
        return Output(0, "1\n")
    if isinstance(action, Wait):
        return Output(0, json.dumps(FIRST_BOOT_READY) if action.judge == "first-boot" else "")
    if isinstance(action, Reboot):
        return Output(0, "")
    if isinstance(action, (Command, Ring)):
        return Output(0, "")
    raise AssertionError(f"no done answer for {action!r}")


def run_fakes(plan: Plan, fleet, tmp_path, progress=None, **options):
    """The plan through the runner on a HostFleet of FakeHosts (the guide's three nodes)."""
    from bootstrap.runner import execute

    return execute(plan, inventory("debian-12"), fleet, SECRETS, log_dir=tmp_path / "logs",
                   progress=progress or (lambda line: None), **options)


def ok(command, _stdin=None) -> RunResult:
    return RunResult(0)
