"""`lab openrc`, `lab open`: use the cloud from this machine, through the controller's front door.

Neither takes the lab's lock nor calls any API: they read what `lab up` and `lab install`
left in .lab/<name>/ (the inventory, the rc files, the CA certificate). A password is never
shown on a terminal: `lab openrc` prints the real file only when its output goes to a pipe
(`eval "$(lab openrc demo)"`), masked otherwise.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path

from lab.commands.common import say, warn
from labcore.errors import LabError, NotAvailableError
from labcore.inventory import Inventory, load_inventory


# The console browsers webbrowser falls back to (Debian's www-browser is one of them).
TEXT_BROWSERS = ("www-browser", "links", "elinks", "lynx", "w3m")


class NotInstalledError(LabError):
    """The lab is up but `lab install` has not written what the command reads yet: run it (exit 1)."""

    exit_code = 1


def _lab(args):
    from lab.commands.common import context

    ctx = context(args)
    return ctx, load_inventory(ctx.paths.inventory, progress=warn)


def rc_file(paths, inventory: Inventory, which: str) -> Path:
    """The credentials file of admin or demo: an openrc (Keystone) or a swiftrc (TempAuth)."""
    return paths.swiftrc(which) if inventory.auth == "tempauth" else paths.openrc(which)


def _installed_rc(paths, inventory: Inventory, which: str) -> Path:
    path = rc_file(paths, inventory, which)
    if not path.exists():
        raise NotInstalledError(f"{path} does not exist yet: `lab install` writes it; run `make lab-install`")
    return path


def openrc(args) -> int:
    """The rc file for eval/source: the real text into a pipe, the masked text and how to use it on a terminal."""
    from lab.laptop_openrc import masked
    from labcore.paths import read_bounded, tighten

    ctx, inventory = _lab(args)
    path = _installed_rc(ctx.paths, inventory, args.user)
    tighten(path, warn)
    text = read_bounded(path, 64 * 1024).decode()
    if inventory.auth == "keystone" and "OS_CACERT=" not in text:
        warn(f"warning: {path} is the controller's openrc (written by an older `lab install`): it names a host "
             f"only the lab reaches; run `make lab-install` to write the one for this machine")
    if not sys.stdout.isatty():
        sys.stdout.write(text)
        return 0
    sys.stdout.write(masked(text))
    say(f'# the password is masked on a terminal; to use it: eval "$(lab openrc {args.user})" or source {path}')
    return 0


def open_dashboard(args) -> int:
    """The dashboard's URL, who logs in, and a browser opened on it when this machine has one."""
    from lab.laptop_openrc import guide_login
    from labcore.front_door import front_door

    ctx, inventory = _lab(args)
    if inventory.auth != "keystone":
        raise NotAvailableError(f"lab {inventory.lab} is Swift alone (auth: tempauth): it has no dashboard; "
                                f"its credentials for the swift client: `lab openrc`")
    openrc_path = _installed_rc(ctx.paths, inventory, "demo")
    url = front_door(inventory).dashboard_url
    login = guide_login(inventory, "demo")
    say(url)
    say(f"log in: domain {login.domain}, user {login.user}, password: OS_PASSWORD in {openrc_path} "
        f"(admin: user admin, {ctx.paths.openrc('admin')})")
    say(f"the certificate is signed by the lab's own CA: trust {ctx.paths.ca_cert} in your browser (certificate "
        f"authorities) to open it without a warning")
    if _browser_opens(url):
        say("opened in your browser")
    else:
        say("no browser to open here: open the URL above on this machine")
    return 0


def access_of(paths, inventory: Inventory) -> dict | None:
    """For `lab status`: the dashboard's URL, who logs in and where each password is (never the
    password); None before `lab install` wrote the openrc files, and for a TempAuth lab (no dashboard)."""
    from lab.laptop_openrc import USERS, guide_login
    from labcore.front_door import front_door

    if inventory.auth != "keystone" or not paths.openrc("demo").exists():
        return None
    logins = []
    for which in reversed(USERS):  # demo first: the user a student logs in as
        login = guide_login(inventory, which)
        logins.append({"as": which, "domain": login.domain, "user": login.user, "project": login.project,
                       "password_in": f"OS_PASSWORD in {paths.openrc(which)}; {paths.secrets.name}: {login.secret}"})
    return {"dashboard": front_door(inventory).dashboard_url, "ca_cert": str(paths.ca_cert), "logins": logins}


def _browser_opens(url: str) -> bool:
    """Open url in this machine's browser, if it has one: none on a Linux without a display (an SSH
    session, a container), where webbrowser would fall back to a text browser in this terminal."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if getattr(browser, "name", "") in TEXT_BROWSERS:  # it would take over this terminal
        return False
    return bool(browser.open(url))
