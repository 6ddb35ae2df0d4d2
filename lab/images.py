"""Which image a lab's instances boot: an explicit `ami:`, else the target's own lookup."""

from __future__ import annotations

from dataclasses import dataclass

from lab.ec2 import with_retry
from labcore.errors import LabError


@dataclass(frozen=True)
class Image:
    image_id: str
    root_device: str


def newest(images: list[dict]) -> Image:
    chosen = max(images, key=lambda i: i.get("CreationDate", ""))
    return Image(chosen["ImageId"], chosen.get("RootDeviceName", "/dev/sda1"))


def image_by_id(ec2, ami: str, region: str) -> Image:
    # A filter, not ImageIds: an unknown id then reads as "no image" instead of an API error.
    images = with_retry(ec2.describe_images, Filters=[{"Name": "image-id", "Values": [ami]}])["Images"]
    if not images:
        raise LabError(f"ami {ami} does not exist in {region}; fix `ami:` in the config")
    return newest(images)


def image_by_name(ec2, owners: list[str], name: str, what: str, region: str) -> Image:
    images = with_retry(ec2.describe_images, Owners=owners,
                        Filters=[{"Name": "name", "Values": [name]},
                                 {"Name": "state", "Values": ["available"]}])["Images"]
    if not images:
        raise LabError(f"no {what} image found in {region} (name {name}, owner "
                       f"{', '.join(owners)}); set `ami:` in the config")
    return newest(images)
