"""The interop guideline's required tests: which Tempest tests a Keystone + Swift cloud must pass.

The OpenStack community certifies a cloud as "OpenStack Powered Storage" when it passes the
required tests of a guideline that covers its release. The guidelines are JSON files of the
openstack/interop repository; the lab keeps the storage program's required list of the two
that cover Rocky in data/ (each names its source commit and the day it was taken), so a run
needs no network and a review sees exactly what is asked.

Tempest names a test `module.Class.test_name[id-<uuid>,tags]`; the guideline names it by
`module.Class.test_name` and its idempotent id. A test is matched by its id first (Tempest
keeps the id when a test is renamed or moved, which is why refstack matches on it) and by
its name otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from labcore.errors import LabError

DATA = Path(__file__).resolve().parent / "data"
PROGRAM_FILE = "powered-storage-{guideline}.json"
# The guideline the lab is judged by, per release: the newest approved one covering it.
GUIDELINE_FOR_RELEASE = {"rocky": "2019.11"}
_TEST_ID = re.compile(r"^(?P<name>[^\[\s]+)(?:\[(?P<attrs>[^\]]*)\])?$")


@dataclass(frozen=True)
class RequiredTest:
    name: str  # module.Class.test_method
    idempotent_id: str  # "id-<uuid>"
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Guideline:
    guideline: str  # "2019.11"
    program: str
    releases: tuple[str, ...]
    source: str
    taken: str
    tests: tuple[RequiredTest, ...]

    def match(self, tempest_id: str) -> RequiredTest | None:
        """The required test a Tempest test id is, or None."""
        name, ids = split_test_id(tempest_id)
        for test in self.tests:
            if test.idempotent_id in ids:
                return test
        return next((t for t in self.tests if t.name == name), None)

    def include_regexes(self) -> list[str]:
        """One anchored regex per required test, for Tempest's --include-list (a file, one per line)."""
        return [rf"^{re.escape(t.name)}\b" for t in self.tests]


def split_test_id(tempest_id: str) -> tuple[str, frozenset[str]]:
    """("module.Class.test", {"id-..."}) of a Tempest test id, its tags dropped."""
    found = _TEST_ID.match(tempest_id.strip())
    if not found:
        return tempest_id.strip(), frozenset()
    attrs = (found.group("attrs") or "").split(",")
    return found.group("name"), frozenset(a.strip() for a in attrs if a.strip().startswith("id-"))


def for_release(release: str) -> Guideline:
    try:
        name = GUIDELINE_FOR_RELEASE[release]
    except KeyError:
        raise LabError(f"no interop guideline is kept for release {release!r}; "
                       f"known: {', '.join(sorted(GUIDELINE_FOR_RELEASE))}") from None
    return load(name)


def load(name: str, folder: Path = DATA) -> Guideline:
    raw = json.loads((folder / PROGRAM_FILE.format(guideline=name)).read_text())
    tests = tuple(RequiredTest(t["test"], t["id"], tuple(t["capabilities"])) for t in raw["required"])
    return Guideline(raw["guideline"], raw["program"], tuple(raw["releases"]), raw["source"], raw["taken"], tests)
