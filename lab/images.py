"""Which image a lab's instances boot: an explicit `ami:`, else the newest official image of the OS.

AWS deprecates every public image at most two years after it was made, and DescribeImages
leaves deprecated images out unless the request says IncludeDeprecated: every Canonical
Ubuntu 18.04 image is past that date, so every lookup here asks for deprecated images too
(a deprecated image still launches; it is only hidden). Each OS's images come from the
account that publishes them, never from a name alone: anyone can publish an image called
`ubuntu/images/...`.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from lab.ec2 import error_code, with_retry
from labcore.errors import LabError

CANONICAL_OWNER = "099720109477"  # Canonical: the Ubuntu images
DEBIAN_OWNER = "136693071363"  # Debian's official cloud team account (user admin)
AMD64_HVM_EBS = (("architecture", "x86_64"), ("virtualization-type", "hvm"), ("root-device-type", "ebs"))
# DescribeImages by id answers these for an id EC2 does not know (or cannot show you).
_UNKNOWN_IMAGE = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"})


@dataclass(frozen=True)
class Image:
    image_id: str
    root_device: str
    name: str = ""


@dataclass(frozen=True)
class ImageQuery:
    """Where an OS's official images are published and which of them fit: the newest one wins."""

    what: str  # how error lines call it, e.g. "Ubuntu 18.04"
    owners: tuple[str, ...]
    name: str  # DescribeImages name pattern
    filters: tuple[tuple[str, str], ...] = ()  # (filter name, value) beyond name and state

    def describe_args(self) -> dict:
        """The DescribeImages request: this owner, this name, available, deprecated included."""
        filters = [("name", self.name), ("state", "available"), *self.filters]
        return {"Owners": list(self.owners), "IncludeDeprecated": True,
                "Filters": [{"Name": key, "Values": [value]} for key, value in filters]}

    def cli_hint(self, region: str) -> str:
        """The same lookup as an `aws` command a user can paste, printing the id it finds."""
        filters = " ".join(f"'Name={key},Values={value}'" for key, value in (("name", self.name), *self.filters))
        return (f"aws ec2 describe-images --region {region} --owners {' '.join(self.owners)} --include-deprecated "
                f"--filters {filters} --query 'sort_by(Images,&CreationDate)[-1].[ImageId,Name]'")


# openstack.os -> the official EC2 images of that OS (amd64, HVM, EBS root: what t3 instances boot).
OFFICIAL_IMAGES = {
    "ubuntu-18.04": ImageQuery("Ubuntu 18.04", (CANONICAL_OWNER,),
                               "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*", AMD64_HVM_EBS),
    "debian-12": ImageQuery("Debian 12", (DEBIAN_OWNER,), "debian-12-amd64-*", AMD64_HVM_EBS),
}


def newest(images: list[dict]) -> Image:
    chosen = max(images, key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))
    return Image(chosen["ImageId"], chosen.get("RootDeviceName", "/dev/sda1"), chosen.get("Name", ""))


def find_newest(ec2, query: ImageQuery, region: str) -> Image:
    """The newest image query matches; a LabError (exit 2) saying how to find one when none does."""
    images = with_retry(ec2.describe_images, **query.describe_args())["Images"]
    if not images:
        raise LabError(f"no {query.what} image found in {region} (owner {', '.join(query.owners)}, name "
                       f"{query.name}); set `ami:` in the config to an image id (`{query.cli_hint(region)}` "
                       f"finds the newest)")
    return newest(images)


def image_by_name(ec2, owners: list[str], name: str, what: str, region: str) -> Image:
    """The newest available image called name (a pattern) of owners: a lookup with no other filter."""
    return find_newest(ec2, ImageQuery(what, tuple(owners), name), region)


def image_by_id(ec2, ami: str, region: str, hint: str | None = None) -> Image:
    """The image `ami:` names, deprecated or not; a LabError (exit 2) when EC2 does not know it.

    hint: a command that finds a good id, for the error line (default: one that shows this id).
    """
    images = with_retry(_images_by_id, ec2, ami)
    hint = hint or (f"aws ec2 describe-images --region {region} --image-ids {ami} --include-deprecated")
    if not images:
        raise LabError(f"ami {ami} does not exist in {region}; fix `ami:` in the config "
                       f"(`{hint}` finds an image id)")
    state = images[0].get("State", "available")
    if state != "available":
        raise LabError(f"ami {ami} in {region} is {state}, not available; fix `ami:` in the config "
                       f"(`{hint}` finds an image id)")
    return newest(images)


def _images_by_id(ec2, ami: str) -> list[dict]:
    """DescribeImages by id: EC2 answers an error, not an empty list, for an id it does not know."""
    try:
        return ec2.describe_images(ImageIds=[ami], IncludeDeprecated=True)["Images"]
    except ClientError as exc:
        if error_code(exc) in _UNKNOWN_IMAGE:
            return []
        raise
