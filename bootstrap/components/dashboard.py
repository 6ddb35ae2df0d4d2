"""The dashboard (Horizon) on the controller: the install guide's Horizon chapter, behind the TLS front door.

The guide installs `openstack-dashboard`, edits local_settings.py and reloads Apache, which then
serves Horizon over plain HTTP on port 80 under /horizon. Here it is served by mod_wsgi from a
snippet the front door's 443 vhost includes (/etc/apache2/lab-front-door/dashboard.conf), under
/dashboard: the user's browser reaches it through the one HTTPS door, and the package's own port
80 configuration stays off, so nothing new listens on 80.

With only identity and object-store in the catalog, Horizon's default home (the project's
Overview, or the admin Overview for an admin) asks Nova and shows an error or a 403; the home
after login is the object store's Containers page instead, for every user.

The guide edits local_settings.py. Both packages' settings.py read local_settings.py first and
then the snippets in openstack_dashboard/local/local_settings.d/, in name order, in the settings'
own namespace; Debian's package puts its own snippets there (WEBROOT "/", a local-memory cache)
that would undo the guide's keys in local_settings.py. So the lab's keys are one snippet read
last, `_90_openstack_ec2_lab.py`, and the package's local_settings.py (its SECRET_KEY, logging)
stays as the package wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap.actions import Command, FileSpec, Packages
from bootstrap.components.swift_proxy import MEMCACHED, OPERATOR_ROLES
from bootstrap.context import STAMP_DIR, PlanContext
from bootstrap.plan import Step
from bootstrap.render import checksum_record, stamp_unchanged
from labcore.front_door import DASHBOARD_PATH, front_door

GUIDE = "https://docs.openstack.org/horizon/rocky/install/install-ubuntu.html"
WEBROOT = f"{DASHBOARD_PATH}/"
HOME = f"{WEBROOT}project/containers/"  # the object store's Containers panel
SNIPPET = "/etc/apache2/lab-front-door/dashboard.conf"  # the front door's 443 vhost includes this folder
# The guide names `user`, which its Keystone chapter never creates (Horizon would then fail to
# create a user). `myrole` is the role the guide's Keystone chapter does create (for myuser), and
# the one Swift's keystoneauth accepts as an operator besides admin (swift_proxy.OPERATOR_ROLES):
# a user made in the dashboard can then use the lab's one service beyond identity, its containers.
DEFAULT_ROLE = "myrole"
assert DEFAULT_ROLE in OPERATOR_ROLES.split(",")
# A 2-core controller also runs MariaDB, RabbitMQ, Keystone and the Swift proxy: two Horizon
# processes (each loads Django and Horizon, ~100 MB) of a few threads serve a class of students.
WSGI_PROCESSES = 2
WSGI_THREADS = 8
STATIC = "/var/lib/openstack-dashboard/static"
MANAGE = "/usr/share/openstack-dashboard/manage.py"
# Horizon's install and compress (~15 s of CPU) run beside Keystone's chapter, which the rest of
# the install waits for: at a lower priority on a controller of two cores.
NICE = 10


@dataclass(frozen=True)
class UpstreamFix:
    """A one-line fix upstream made after the packaged release, applied to the package's files."""

    what: str
    files: tuple[str, ...]
    old: str
    new: str
    bundled: bool  # JavaScript that `manage.py compress` bundles (else Python the wsgi processes load)


@dataclass(frozen=True)
class Layout:
    """Where this OS's openstack-dashboard package keeps things."""

    settings: str  # the lab's snippet in the local_settings.d/ that settings.py reads
    wsgi_script: str
    wsgi_user: str  # the user the package's own Apache configuration runs Horizon as (owns the secret key)
    secret_key: str  # where the package's local_settings.py keeps the generated SECRET_KEY
    package_conf: str | None  # the package's Apache conf (port 80, /horizon), disabled; None: not installed
    fixes: tuple[UpstreamFix, ...] = ()


_SNIPPET = "_90_openstack_ec2_lab.py"  # after Debian's _0001.._0006
_SWIFT_JS = "app/core/openstack-service-api/swift.service.js"
# Horizon 23.0.0 (Debian 12's) asks whether an object name is taken and reads every answer, a 404
# too, as "taken": no file can be uploaded from the dashboard ("This name already exists",
# https://bugs.launchpad.net/horizon/+bug/1993005). Upstream's fix (a327842a, in 23.2.0 and in
# stable/zed) is this line, applied to the package's file and to its collected copy before the
# compress that bundles it. Horizon 14 (Rocky) never had the bug.
HORIZON_1993005 = UpstreamFix(
    "Horizon's object name check (bug 1993005: every upload 'already exists')",
    (f"/usr/lib/python3/dist-packages/openstack_dashboard/static/{_SWIFT_JS}", f"{STATIC}/{_SWIFT_JS}"),
    "return promise.catch(angular.noop);", "return promise;", bundled=True)
# keystoneauth1 5.0.0 (Debian 12's) walks sys.modules to name itself in User-Agent when it runs
# under mod_wsgi; a module imported meanwhile by another thread makes the login fail with
# "RuntimeError: dictionary changed size during iteration" ("Something went wrong!"), seen on
# the first login after Apache's reload. Upstream's fix (3b492a7a, keystoneauth1 5.10.0) walks a copy.
KEYSTONEAUTH_MODULES_COPY = UpstreamFix(
    "keystoneauth1's walk of sys.modules under mod_wsgi (a copy: the login's 'dictionary changed size')",
    ("/usr/lib/python3/dist-packages/keystoneauth1/session.py",),
    "for n, m in sys.modules.items()", "for n, m in sys.modules.copy().items()", bundled=False)


LAYOUTS = {
    # openstack-dashboard 14 (Rocky) from the Ubuntu Cloud Archive.
    # /usr/share/openstack-dashboard is first on the path of its wsgi.py and manage.py.
    "ubuntu-18.04": Layout(f"/usr/share/openstack-dashboard/openstack_dashboard/local/local_settings.d/{_SNIPPET}",
                           "/usr/share/openstack-dashboard/openstack_dashboard/wsgi.py", "horizon",
                           "/var/lib/openstack-dashboard/secret_key", "openstack-dashboard"),
    # Debian 12's openstack-dashboard 23 (Zed); its Apache configuration is another package
    # (openstack-dashboard-apache) the lab does not install.
    # The postinst links openstack_dashboard/local/local_settings.d to /etc/openstack-dashboard/local_settings.d.
    "debian-12": Layout(f"/etc/openstack-dashboard/local_settings.d/{_SNIPPET}",
                        "/usr/share/openstack-dashboard/wsgi.py", "www-data",
                        "/var/lib/openstack-dashboard/secret-key", None, (HORIZON_1993005, KEYSTONEAUTH_MODULES_COPY)),
}


def layout(ctx: PlanContext) -> Layout:
    return LAYOUTS[ctx.profile.name]


def allowed_hosts(ctx: PlanContext) -> tuple[str, ...]:
    """The names a browser puts in Host: the front door's, and `controller` for the lab's own hosts."""
    door = front_door(ctx.inventory)
    return tuple(dict.fromkeys((door.host, *door.names, *door.addresses, "controller")))


def settings_lines(ctx: PlanContext) -> tuple[str, ...]:
    """The guide's keys (and the lab's few more, each saying why) as Python lines."""
    hosts = ", ".join(repr(h) for h in allowed_hosts(ctx))
    return (
        "# openstack-ec2-lab: the install guide's Horizon chapter (rocky), served under /dashboard",
        "# behind the controller's TLS front door. Written by `lab install`: edits here are replaced.",
        'OPENSTACK_HOST = "controller"',
        f"ALLOWED_HOSTS = [{hosts}]",
        "SESSION_ENGINE = 'django.contrib.sessions.backends.cache'",
        "CACHES = {",
        "    'default': {",
        "        'BACKEND': 'django.core.cache.backends.memcached.MemcachedCache',",
        f"        'LOCATION': '{MEMCACHED}',",
        "    }",
        "}",
        "# Horizon talks to Keystone and Swift from the controller itself: the internal endpoints",
        "# (http://controller:...), not the public ones through the front door.",
        'OPENSTACK_KEYSTONE_URL = "http://%s:5000/v3" % OPENSTACK_HOST',
        'OPENSTACK_ENDPOINT_TYPE = "internalURL"',
        "OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = True",
        "# The guide's identity 3 and image 2; its volume 2 is left out (the lab has no Block Storage,",
        "# and Zed's Horizon knows only volume 3).",
        'OPENSTACK_API_VERSIONS = {"identity": 3, "image": 2}',
        'OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"',
        f"# The guide says \"user\", a role its Keystone chapter never creates; {DEFAULT_ROLE} exists",
        "# (the guide's demo role) and is one of Swift's operator roles.",
        f'OPENSTACK_KEYSTONE_DEFAULT_ROLE = "{DEFAULT_ROLE}"',
        'TIME_ZONE = "UTC"',
        "# Served under /dashboard: the login, logout and static URLs follow.",
        f'WEBROOT = "{WEBROOT}"',
        'LOGIN_URL = WEBROOT + "auth/login/"',
        'LOGOUT_URL = WEBROOT + "auth/logout/"',
        "LOGIN_REDIRECT_URL = WEBROOT",
        'STATIC_URL = WEBROOT + "static/"',
        "# HTTPS only: the cookies never travel over plain HTTP.",
        "SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https')",
        "CSRF_COOKIE_SECURE = True",
        "SESSION_COOKIE_SECURE = True",
        "# Only identity and object-store are in the catalog: every user lands on Containers, not on",
        "# an Overview that asks Nova.",
        f'HORIZON_CONFIG["user_home"] = "{HOME}"',
    )


def settings_file(ctx: PlanContext) -> FileSpec:
    return FileSpec(layout(ctx).settings, "\n".join(settings_lines(ctx)) + "\n")


def apache_conf(ctx: PlanContext) -> str:
    """The snippet the front door's 443 vhost includes: Horizon under /dashboard, its static files."""
    where = layout(ctx)
    script_dir = where.wsgi_script.rsplit("/", 1)[0]
    return "\n".join((
        "# openstack-ec2-lab: the dashboard (Horizon) under /dashboard, inside the front door's HTTPS vhost.",
        f"WSGIDaemonProcess horizon user={where.wsgi_user} group={where.wsgi_user} processes={WSGI_PROCESSES} "
        f"threads={WSGI_THREADS} display-name=%{{GROUP}}",
        # Both groups named: mod_wsgi loads Horizon when the daemon starts, not in the first request.
        f"WSGIScriptAlias {DASHBOARD_PATH} {where.wsgi_script} process-group=horizon application-group=%{{GLOBAL}}",
        "WSGIApplicationGroup %{GLOBAL}",  # the guide's line 3
        "WSGIProcessGroup horizon",
        f"Alias {WEBROOT}static {STATIC}",  # mod_alias answers before mod_wsgi
        # The door's bare address (what a user types) leads to the dashboard, not Apache's default
        # page; Swift, at the root too, is never asked for "/" itself by its clients.
        f"RedirectMatch 302 ^/$ {WEBROOT}",
        f"<Directory {script_dir}>",
        "    Require all granted",
        "</Directory>",
        f"<Directory {STATIC}>",
        "    Require all granted",
        "</Directory>",
    )) + "\n"


def _apache_setup(ctx: PlanContext) -> tuple[Command, ...]:
    """mod_wsgi on; the package's own port-80 /horizon configuration off (Ubuntu enables it)."""
    on = Command(("a2enmod -q wsgi",), "test -e /etc/apache2/mods-enabled/wsgi.load", after_change=False,
                 what="enable Apache's mod_wsgi")
    conf = layout(ctx).package_conf
    if conf is None:
        return (on,)
    enabled = f"/etc/apache2/conf-enabled/{conf}.conf"
    off = Command((f"a2disconf -q {conf}",), f"! test -e {enabled}", after_change=False,
                  what=f"disable the package's {conf}.conf (plain HTTP on port 80, /horizon)")
    return (on, off)


def _fix(fix: UpstreamFix) -> Command:
    """sed on those of the fix's files that exist: before openstack-dashboard is installed, its
    collected copy under STATIC is not there yet (collectstatic then copies the fixed file)."""
    pattern = fix.old.replace(".", "\\.")  # sed's basic regular expression: only the dots are special here
    return Command((f"for f in {' '.join(fix.files)}; do [ ! -e \"$f\" ] || sed -i 's/{pattern}/{fix.new}/' \"$f\"; done",),
                   " && ".join(f"! grep -qsF '{fix.old}' {f}" for f in fix.files), after_change=False,
                   what=f"apply upstream's fix of {fix.what}")


def _fixed_files(ctx: PlanContext, bundled: bool | None = None) -> tuple[str, ...]:
    return tuple(f for fix in layout(ctx).fixes if bundled in (None, fix.bundled) for f in fix.files)


COMPRESS_TRIES = 3
# django-compressor's offline manifest (Horizon's COMPRESS_OUTPUT_DIR), written last by every compress.
MANIFEST = f"{STATIC}/dashboard/manifest.json"


def compressed_since(inputs: tuple[str, ...]) -> str:
    """Exits 0 when the last compress wrote its manifest after every input last changed: then
    it read these settings and bundled these files (as make decides, by modification times)."""
    return f'test -e {MANIFEST} && test -z "$(find {" ".join(inputs)} -newer {MANIFEST} 2>/dev/null)"'


def _compress(ctx: PlanContext) -> Command:
    """Horizon's CSS and JS compressed offline for the URLs under /dashboard, unless the last
    compress is newer than the settings and the fixed files: openstack-dashboard's postinst
    compresses, and the dashboard-packages step installs it after writing both, so a fresh
    controller compresses once. Then ownership as the package's postinst leaves it (the wsgi
    user reads the secret key)."""
    where = layout(ctx)
    inputs = (where.settings, *_fixed_files(ctx, bundled=True))
    # Up to three tries: pyScss, under compress, now and then fails to parse a template's
    # inline SCSS ("Found 'inline-blo' but expected ...", serial_console.html; once in CI's
    # e2e run, never in the same file the next time). A third failure is the step's.
    # At a lower priority (nice): its ~15 s of CPU run beside Keystone's chapter, which the
    # rest of the install waits for, on a controller of two cores.
    return Command((f"( n=1; until nice -n {NICE} {MANAGE} compress --force >/dev/null; do "
                    f"[ $n -lt {COMPRESS_TRIES} ] || exit 1; "
                    f"n=$((n+1)); done )",
                    f"for p in {where.secret_key} {STATIC}; do "
                    f"[ ! -e \"$p\" ] || chown -R {where.wsgi_user} \"$p\"; done"),
                   compressed_since(inputs), after_change=False,
                   what=f"compress Horizon's CSS and JS for {WEBROOT} (manage.py compress), unless done since the settings changed")


def _reload(ctx: PlanContext) -> Command:
    """Apache reloaded (its Horizon processes too) when the snippet or the settings changed since
    the last reload, or started when it is not running."""
    stamp = f"{STAMP_DIR}/dashboard-apache.sha256"
    inputs = (SNIPPET, layout(ctx).settings, *_fixed_files(ctx))
    return Command(("systemctl reload-or-restart apache2", checksum_record(stamp, inputs)),
                   f"systemctl is-active -q apache2 && {stamp_unchanged(stamp, inputs)}", after_change=False,
                   what="reload apache2 when the dashboard's configuration changed")


def steps(ctx: PlanContext) -> list[Step]:
    """The guide's chapter in two steps: the settings and upstream's fixes before the package, so
    that its postinst's compress is the only one; then Apache's side and the reload."""
    where, host = layout(ctx), (ctx.controller.name,)
    install = Packages(ctx.profile.dashboard_late_packages, lock=ctx.profile.apt_lock, nice=NICE)
    before = (settings_file(ctx), *(_fix(f) for f in where.fixes), install)
    serve = (FileSpec(SNIPPET, apache_conf(ctx)), *_apache_setup(ctx), _compress(ctx), _reload(ctx))
    return [Step("dashboard-packages", "dashboard", host, before, guide=GUIDE),
            Step("dashboard", "dashboard", host, serve, guide=GUIDE)]
