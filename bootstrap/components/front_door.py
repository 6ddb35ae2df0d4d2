"""The TLS front door on the controller (Keystone labs): Apache on 443, as DevStack's tls-proxy.

The guide's endpoints (`http://controller:5000`, `:8080`) name a host only the lab's own hosts
resolve, over plain HTTP. The user's machine instead reaches one HTTPS door on the controller
(labcore/front_door.py says its name), which serves /identity (Keystone), the Swift proxy's
API at the root (/v1, /info, /crossdomain.xml, /healthcheck) and /dashboard (Horizon: bootstrap/components/dashboard writes
its snippet into SNIPPETS, which the vhost includes). The catalog's public endpoints are the
door's URLs; internal and admin stay the guide's.

Two steps, before Keystone's (its chapter's `openstack` commands already go through the
public identity endpoint):
- front-door-trust: the lab's CA certificate (public; never its key) in the controller's system
  trust, so the controller's own clients (the guide's admin-openrc, the cloud-ready check,
  `lab verify`, Tempest) trust the door as the user's machine does. It needs no package the
  services bring (update-ca-certificates takes ~2.5 s), so it runs with the controller's
  environment services, while apt still unpacks the OpenStack packages;
- front-door (its own phase, once Apache is installed): the server key (0600) and certificate made at `lab install`
  (labcore/front_door_cert.py), mod_ssl, mod_proxy, mod_proxy_http, mod_headers, the vhost, and
  Apache answering through the door with the system trust (what proves the name resolves on
  the controller and the certificate fits it).

Nothing new listens on port 80: on Debian 12, where Apache is only the door (Keystone runs
in uwsgi), ports.conf listens on 443 alone and the package's default site is off; on Ubuntu
18.04 Apache also serves Keystone on 5000 (its site has its own Listen), so ports.conf stays.
"""

from __future__ import annotations

from bootstrap import hostprograms
from bootstrap.actions import Command, FileSpec, Service, Wait
from bootstrap.components.swift_proxy import PROXY_PORT
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from labcore.front_door import IDENTITY_PATH, PORT

PHASE = "front-door"
TRUST_PHASE = "controller-services"
APACHE = "/etc/apache2"
SITE = "openstack-ec2-lab-front-door"
SITE_CONF = f"{APACHE}/sites-available/{SITE}.conf"
SNIPPETS = f"{APACHE}/lab-front-door"  # the dashboard's (and any later path's) Apache snippets
PORTS_CONF = f"{APACHE}/ports.conf"
# Not in /etc/ssl/certs: update-ca-certificates hashes every certificate there into the trust path.
SERVER_CERT = "/etc/ssl/openstack-ec2-lab/front-door.pem"
SERVER_KEY = "/etc/ssl/private/openstack-ec2-lab-front-door.key"
# update-ca-certificates takes /usr/local/share/ca-certificates/*.crt into the system bundle
# (/etc/ssl/certs/ca-certificates.crt, which Debian's and Ubuntu's Python clients read) and links
# each as /etc/ssl/certs/<name>.pem.
TRUSTED_CA = "/usr/local/share/ca-certificates/openstack-ec2-lab-ca.crt"
TRUSTED_LINK = "/etc/ssl/certs/openstack-ec2-lab-ca.pem"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
MODULES = ("ssl", "proxy", "proxy_http", "headers")
KEYSTONE_BACKEND = "http://controller:5000"
SWIFT_BACKEND = f"http://controller:{PROXY_PORT}"
# The Swift API's paths (/v1 and what its clients ask at the root), as the proxy serves them.
SWIFT_PATHS = ("/v1", "/info", "/crossdomain.xml", "/healthcheck")
DOOR_WAIT_SECONDS = 60.0
# What the plan holds before `lab install` made the pair (`lab plan`, `install --check` on a new lab).
NOT_MADE = "# made by `lab up` and `lab install` (.lab/<name>/{name}); until then the plan holds this line\n"


def vhost(host: str) -> str:
    """The door's one virtual host: TLS on 443, the API paths proxied to the guide's services.

    As DevStack's tls-proxy, with two differences: no reused backend connection (keystone's uwsgi
    closes every connection), and retry=0 (a backend restarted by a later step is asked again at
    once, not refused for 60 s); nocanon and encoded slashes kept (Swift object names are passed
    as the client sent them). DevStack turns KeepAlive off towards the clients (a 2016 client
    bug); here it stays on: with a new TLS connection per request, a Python client spends ~50 ms
    on each (it loads the system's CA bundle again), ~1.5 s for the identity chapter's commands.

    Keystone under /identity builds its version links from the request: Host is kept, and
    X-Forwarded-Proto and X-Forwarded-Prefix tell it the scheme and the path (keystone.conf
    parses them: [oslo_middleware] enable_proxy_headers_parsing). Swift is at the root, its
    paths unchanged (signed URLs sign the path); it is asked as controller:8080 and its
    redirects (static web's) are turned back into the door's URL by ProxyPassReverse.
    """
    swift = "\n".join(f"    ProxyPass {p} {SWIFT_BACKEND}{p} retry=0 nocanon\n"
                      f"    ProxyPassReverse {p} {SWIFT_BACKEND}{p}" for p in SWIFT_PATHS)
    return f"""# openstack-ec2-lab: the TLS front door (the only way in from outside besides SSH).
<VirtualHost *:{PORT}>
    ServerName {host}
    SSLEngine on
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCertificateFile {SERVER_CERT}
    SSLCertificateKeyFile {SERVER_KEY}
    KeepAlive On
    SetEnv proxy-nokeepalive 1
    AllowEncodedSlashes NoDecode
    ProxyPreserveHost On
    RequestHeader set X-Forwarded-Proto "https"

    <Location {IDENTITY_PATH}>
        RequestHeader set X-Forwarded-Prefix "{IDENTITY_PATH}"
    </Location>
    ProxyPass {IDENTITY_PATH} {KEYSTONE_BACKEND} retry=0 nocanon
    ProxyPassReverse {IDENTITY_PATH} {KEYSTONE_BACKEND}

    <LocationMatch "^({'|'.join(p.replace('.', '[.]') for p in SWIFT_PATHS)})">
        ProxyPreserveHost Off
    </LocationMatch>
{swift}

    IncludeOptional {SNIPPETS}/*.conf

    ErrorLog ${{APACHE_LOG_DIR}}/{SITE}_error.log
    CustomLog ${{APACHE_LOG_DIR}}/{SITE}_access.log combined
</VirtualHost>
"""


PORTS_443 = f"# openstack-ec2-lab: Apache is the TLS front door only; nothing listens on port 80.\nListen {PORT}\n"


def trust_step(ctx: PlanContext) -> Step:
    """The lab's CA certificate in the controller's system trust (the certificate only: it is public)."""
    ca = ctx.lab_ca_pem.decode() if ctx.lab_ca_pem else NOT_MADE.format(name="ca.pem")
    actions = (
        FileSpec(TRUSTED_CA, ca),
        Command(("update-ca-certificates",), f"test -e {TRUSTED_LINK} && grep -qF \"$(sed -n 2p {TRUSTED_CA})\" "
                f"{SYSTEM_BUNDLE}",
                what=f"update-ca-certificates: the lab's CA in {SYSTEM_BUNDLE}"),
    )
    return Step("front-door-trust", TRUST_PHASE, (ctx.controller.name,), actions)


def _sites(ctx: PlanContext) -> Command:
    """The modules and the door's site on; on Debian 12 the package's default site (port 80) off."""
    enabled = [f"{APACHE}/mods-enabled/{m}.load" for m in MODULES] + [f"{APACHE}/sites-enabled/{SITE}.conf"]
    run = [f"a2enmod -q {' '.join(MODULES)}", f"a2ensite -q {SITE}"]
    done = " && ".join(f"test -e {p}" for p in enabled)
    what = f"enable Apache's {', '.join(MODULES)} modules and the site {SITE}"
    if ctx.profile.keystone_web != "apache":
        run.append("a2dissite -q 000-default")
        done += f" && ! test -e {APACHE}/sites-enabled/000-default.conf"
        what += "; disable the default site (port 80)"
    return Command(tuple(run), done, after_change=False, what=what)


def door_step(ctx: PlanContext) -> Step:
    door = ctx.door
    cert = ctx.door_cert
    key_pem = cert.key_pem.decode() if cert else NOT_MADE.format(name="front-door-key.pem")
    cert_pem = cert.cert_pem.decode() if cert else NOT_MADE.format(name="front-door.pem")
    files = [FileSpec(SERVER_KEY, key_pem, mode=0o600), FileSpec(SERVER_CERT, cert_pem)]
    if ctx.profile.keystone_web != "apache":
        files.append(FileSpec(PORTS_CONF, PORTS_443))
    files.append(FileSpec(SITE_CONF, vhost(door.host)))
    wait = Wait(f"the front door answers at {door.base}/ with the lab's CA trusted",
                hostprograms.argv("python3", "wait_http.py", f"{door.base}/", "{seconds}"), seconds=DOOR_WAIT_SECONDS)
    actions = (*files, _sites(ctx), Service(("apache2",)), wait)
    return Step("front-door", PHASE, (ctx.controller.name,), actions)


def steps(ctx: PlanContext) -> list[Step]:
    return [trust_step(ctx), door_step(ctx)]
