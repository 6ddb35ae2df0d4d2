"""A body that powered itself off, told to the EC2 API the way EC2 acts on it.

On EC2, an instance whose OS shuts down (`poweroff`, `shutdown -h`, a timer that calls
them) is stopped, or terminated when it was launched with
InstanceInitiatedShutdownBehavior=terminate, and then its DeleteOnTermination volumes are
deleted. moto has no OS to watch, so the twin tells it with the calls a user would make,
StopInstances or TerminateInstances; moto then treats the volumes as EC2 does (measured,
moto 5.2): DeleteOnTermination ones are deleted, including volumes attached with
AttachVolume and marked by ModifyInstanceAttribute, as `lab up` does; the others become
available. A stopped instance keeps every volume attached.
"""

from __future__ import annotations

ATTRIBUTE = "instanceInitiatedShutdownBehavior"


def shutdown_behavior(ec2, instance_id: str) -> str:
    """stop (EC2's default) or terminate."""
    answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=ATTRIBUTE)
    return (answer.get("InstanceInitiatedShutdownBehavior") or {}).get("Value") or "stop"


def instance_initiated_shutdown(ec2, instance_id: str) -> str:
    """Stop or terminate instance_id as its shutdown behaviour says; what became of it."""
    if shutdown_behavior(ec2, instance_id) == "terminate":
        ec2.terminate_instances(InstanceIds=[instance_id])
        return "terminated"
    ec2.stop_instances(InstanceIds=[instance_id])
    return "stopped"
