"""The credentials files for the user's own machine: the guide's openrc, through the front door.

The guide's admin-openrc / demo-openrc (bootstrap/components/keystone.py) name
http://controller:5000/v3, which only the lab's own hosts resolve and reach; the controller
keeps those. The copies under .lab/<name>/ are for the machine that made the lab: the same
domain, project, user and password, read from the guide's text rather than repeated here,
with OS_AUTH_URL at the front door (labcore/front_door.py), OS_INTERFACE=public (the
catalog's HTTPS endpoints) and OS_CACERT at the lab's CA certificate, so `openstack` and
`swift` work from there with nothing else set up.

Pure: text in, text out. What shows such a file to a person masks its password (`masked`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from labcore.front_door import front_door
from labcore.inventory import Inventory
from labcore.secrets import SECRET_NAMES, MASK, Secrets

# The variables of the lab's rc files that hold a password (openrc: Keystone's, swiftrc: TempAuth's).
SECRET_VARIABLES = ("OS_PASSWORD", "ST_KEY")
USERS = ("admin", "demo")


def laptop_openrc(inventory: Inventory, secrets: Secrets, which: str, ca_cert: Path) -> str:
    """admin-openrc or demo-openrc for the user's machine: the guide's variables, the front door's URL,
    the public interface and the lab's CA (ca_cert: an absolute path, so the file works from anywhere)."""
    from bootstrap.components.keystone import openrc

    values = read_rc(openrc(inventory, secrets, which))
    values["OS_AUTH_URL"] = front_door(inventory).identity_url
    values["OS_INTERFACE"] = "public"
    values["OS_CACERT"] = str(Path(ca_cert).absolute())
    return render_rc(values)


def read_rc(text: str) -> dict[str, str]:
    """The `export NAME=value` lines of an rc file, in order, values unquoted as the shell would."""
    values = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            values[name] = value
    return values


def render_rc(values: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def masked(text: str) -> str:
    """The rc file's text with every password replaced by ********: what a terminal may show."""
    lines = []
    for line in text.splitlines(keepends=True):
        name = line.removeprefix("export ").split("=", 1)[0].strip()
        lines.append(f"export {name}={MASK}\n" if name in SECRET_VARIABLES and "=" in line else line)
    return "".join(lines)


@dataclass(frozen=True)
class Login:
    """Who logs in to the dashboard as admin or demo, and which secret is the password (never its value)."""

    which: str
    domain: str
    user: str
    project: str
    secret: str  # the key of secrets.yaml holding the password


def guide_login(inventory: Inventory, which: str) -> Login:
    """The guide's domain, project and user for admin or demo, read from its openrc text made with
    stand-in secrets (each the name of its own key): which key holds the password, with no secret read."""
    from bootstrap.components.keystone import openrc

    stand_ins = Secrets({name: f"secret-{name}" for name in SECRET_NAMES})
    values = read_rc(openrc(inventory, stand_ins, which))
    return Login(which, values["OS_USER_DOMAIN_NAME"], values["OS_USERNAME"], values["OS_PROJECT_NAME"],
                 values["OS_PASSWORD"].removeprefix("secret-"))
