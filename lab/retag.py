"""Moving a lab's expiry: one CreateTags (or DeleteTags) over every resource of the lab at once."""

from __future__ import annotations

from typing import Callable

from lab.ec2 import with_retry
from labcore import tags as tag

Progress = Callable[[str], None]
EXPIRY_KEYS = (tag.EXPIRES_AT, tag.EXPIRES_AFTER)
BATCH = 1000  # CreateTags takes at most 1000 resource ids per call


def set_expiry_tags(ec2, resource_ids: list[str], tags: dict[str, str], progress: Progress) -> None:
    """Every resource tagged with tags (lab:expires-at, lab:expires-after); with none, both removed."""
    for start in range(0, len(resource_ids), BATCH):
        chunk = resource_ids[start:start + BATCH]
        if tags:
            with_retry(ec2.create_tags, Resources=chunk, Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                       retry_not_found=True)
        else:
            with_retry(ec2.delete_tags, Resources=chunk, Tags=[{"Key": k} for k in EXPIRY_KEYS],
                       retry_not_found=True)
    progress(f"expiry tags of {len(resource_ids)} resources of the lab updated")
