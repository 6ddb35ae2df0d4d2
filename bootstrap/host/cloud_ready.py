"""Does the cloud serve a user's first steps? One round of checks; it never waits.

    python3 cloud_ready.py OPENRC PROXY_URL STORAGE_JSON
    e.g.    python3 cloud_ready.py /root/demo-openrc http://controller:8080 '["172.31.0.5:6200", ...]'

OPENRC may be a swiftrc (ST_AUTH, ST_USER, ST_KEY: a TempAuth lab); then the token is TempAuth's
(GET ST_AUTH with X-Auth-User and X-Auth-Key), the storage URL its X-Storage-Url.

Checks, each printed as `ok NAME` or `late NAME: why`:
  proxy healthcheck          GET PROXY_URL/healthcheck
  storage IP:PORT healthcheck  GET /healthcheck of every storage server in STORAGE_JSON
  token for USER             POST OS_AUTH_URL/auth/tokens with the openrc's user and project,
                             and a public object-store endpoint in the catalog
  swift round trip           PUT a container and an object under a random name, GET the
                             same bytes back, DELETE both; only once every storage server
                             answers (a PUT before would get the proxy to error-limit it)
Exit 0 when every check is ok, 1 when any is late, 2 for bad arguments or openrc.
The password and the token are never printed.

Why: right after an install a user's first `swift upload` got "503" for the container and
"404" for the object, and worked half a minute later. The runner polls this program until
it exits 0, so `lab install` says done only when the cloud answers as a user will use it.
No proxy is used: the lab's hosts talk directly.
"""
from __future__ import print_function

import binascii
import json
import os
import shlex
import socket
import sys

try:
    from http.client import HTTPException
    from urllib.error import HTTPError, URLError
    from urllib.request import ProxyHandler, Request, build_opener
except ImportError:  # python 2.7
    from httplib import HTTPException
    from urllib2 import HTTPError, ProxyHandler, Request, URLError, build_opener

TIMEOUT = 5.0
OPENRC_KEYS = ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
               "OS_PROJECT_DOMAIN_NAME")
SWIFTRC_KEYS = ("ST_AUTH", "ST_USER", "ST_KEY")
OPENER = build_opener(ProxyHandler({}))


class Late(Exception):
    """A check that does not pass yet; the message says why, in a few words."""


def read_openrc(path):
    """The `export KEY=value` lines of an openrc file (values unquoted as the shell would)."""
    values = {}
    with open(path) as f:
        for line in f:
            words = shlex.split(line, comments=True)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                key, value = words[1].split("=", 1)
                values[key] = value
    missing = [key for key in (SWIFTRC_KEYS if "ST_AUTH" in values else OPENRC_KEYS) if not values.get(key)]
    if missing:
        raise ValueError("no %s (expected a line `export %s=...`)" % (missing[0], missing[0]))
    return values


def native(text):
    """JSON gives unicode on python 2, and httplib then fails to join it with a binary body."""
    if sys.version_info[0] == 2 and isinstance(text, unicode):  # noqa: F821 (python 2 only)
        return text.encode("utf-8")
    return text


def call(method, url, body=None, headers=None):
    """(status, headers, body bytes) of any HTTP answer; Late when nothing answered."""
    headers = {native(key): native(value) for key, value in (headers or {}).items()}
    request = Request(native(url), data=body, headers=headers)
    request.get_method = lambda: method
    try:
        response = OPENER.open(request, timeout=TIMEOUT)
    except HTTPError as error:
        response = error
    except URLError as error:
        raise Late(str(getattr(error.reason, "strerror", None) or error.reason))
    except (socket.timeout, socket.error, HTTPException) as error:
        raise Late(str(error) or type(error).__name__)
    try:
        return response.code, response.info(), response.read()
    except (socket.timeout, socket.error, HTTPException) as error:
        raise Late("%s while reading the answer" % (str(error) or type(error).__name__))
    finally:
        response.close()


def expect(what, answer, statuses):
    status = answer[0]
    if status not in statuses:
        raise Late("%s answered HTTP %d" % (what, status))
    return answer


def healthcheck(url):
    expect("healthcheck", call("GET", url), (200,))


def token_request(openrc):
    """The body of POST /v3/auth/tokens for the openrc's user, scoped to its project."""
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": openrc["OS_USERNAME"], "domain": {"name": openrc["OS_USER_DOMAIN_NAME"]},
        "password": openrc["OS_PASSWORD"]}}},
        "scope": {"project": {"name": openrc["OS_PROJECT_NAME"],
                              "domain": {"name": openrc["OS_PROJECT_DOMAIN_NAME"]}}}}}


def object_store_url(answer, openrc):
    """The public object-store endpoint of a token's catalog (in the openrc's region, if it names one)."""
    region = openrc.get("OS_REGION_NAME")
    for service in answer["token"].get("catalog", []):
        for endpoint in service.get("endpoints", []) if service.get("type") == "object-store" else []:
            if endpoint.get("interface") == "public" and region in (None, endpoint.get("region")):
                return endpoint["url"].rstrip("/")
    raise Late("no public object-store endpoint in the catalog")


def token(openrc):
    """The token and the public object-store URL, from POST /v3/auth/tokens."""
    auth_url = openrc["OS_AUTH_URL"].rstrip("/")
    if not auth_url.endswith("/v3"):
        auth_url += "/v3"
    _, headers, answer = expect("keystone", call(
        "POST", auth_url + "/auth/tokens", json.dumps(token_request(openrc)).encode("utf-8"),
        {"Content-Type": "application/json"}), (201,))
    value = headers.get("X-Subject-Token")
    if not value:
        raise Late("keystone answered without X-Subject-Token")
    try:
        found = json.loads(answer.decode("utf-8"))
        found["token"].get("catalog", [])
    except (ValueError, KeyError, AttributeError):
        raise Late("keystone's answer is not a token")
    return value, object_store_url(found, openrc)


def tempauth_token(swiftrc):
    """The token and the storage URL from TempAuth's v1 auth (GET /auth/v1.0)."""
    _, headers, _ = expect("tempauth", call("GET", swiftrc["ST_AUTH"], None, {
        "X-Auth-User": swiftrc["ST_USER"], "X-Auth-Key": swiftrc["ST_KEY"]}), (200,))
    value, url = headers.get("X-Auth-Token"), headers.get("X-Storage-Url")
    if not value or not url:
        raise Late("tempauth answered without X-Auth-Token and X-Storage-Url")
    return value, url.rstrip("/")


def round_trip(auth, storage_url):
    """PUT a container and an object, GET it back, DELETE both; what is created is removed."""
    name = "lab-ready-" + binascii.hexlify(os.urandom(6)).decode("ascii")
    data = os.urandom(64)
    container, obj = "%s/%s" % (storage_url, name), "%s/%s/ready" % (storage_url, name)
    headers = {"X-Auth-Token": auth}
    made = []
    try:
        expect("container PUT", call("PUT", container, b"", headers), (201, 202))
        made.append(container)
        expect("object PUT", call("PUT", obj, data, headers), (201,))
        made.append(obj)
        if expect("object GET", call("GET", obj, None, headers), (200,))[2] != data:
            raise Late("object GET gave other bytes than were PUT")
        while made:
            what = "object DELETE" if made[-1] == obj else "container DELETE"
            expect(what, call("DELETE", made[-1], None, headers), (204,))
            made.pop()
    except Late as late:
        if not made:
            raise
        left = [url for url in reversed(made) if not removed(url, headers)]
        raise Late("%s (%s)" % (late, "left container %s behind" % name if left else "removed again"))


def removed(url, headers):
    """Clean-up after a failed round: True when url is gone (deleted now, or already)."""
    try:
        return call("DELETE", url, None, headers)[0] in (204, 404)
    except Late:
        return False


def checks(openrc, proxy_url, storage):
    """(name, function) in the order a user meets them."""
    found = [("proxy healthcheck", lambda: healthcheck(proxy_url.rstrip("/") + "/healthcheck"))]
    state = {"storage down": 0}

    def storage_check(server):
        try:
            healthcheck("http://%s/healthcheck" % server)
        except Late:
            state["storage down"] += 1
            raise

    for server in storage:
        found.append(("storage %s healthcheck" % server, lambda server=server: storage_check(server)))

    def token_check():
        state["auth"], state["url"] = tempauth_token(openrc) if "ST_AUTH" in openrc else token(openrc)

    def swift_check():
        if "auth" not in state:
            raise Late("needs the token above")
        if state["storage down"]:
            # A PUT through the proxy while a storage server refuses makes the proxy error-limit
            # that server (error_suppression_interval, 60 s): the user would get 503 for a minute
            # after every server is up. So the proxy is not asked before they all answer.
            raise Late("waits for the %d storage servers above that do not answer yet" % state["storage down"])
        round_trip(state["auth"], state["url"])

    found.append(("token for %s" % (openrc.get("ST_USER") or openrc["OS_USERNAME"]), token_check))
    found.append(("swift round trip", swift_check))
    return found


def openrc_argument(path):
    """read_openrc for a command-line argument: any problem is a ValueError naming the file."""
    try:
        return read_openrc(path)
    except (IOError, OSError) as error:
        raise ValueError("%s: cannot read (%s)" % (path, error.strerror))
    except ValueError as error:
        raise ValueError("%s: %s" % (path, error))


def arguments(args):
    if len(args) != 3:
        raise ValueError("usage: cloud_ready.py OPENRC PROXY_URL STORAGE_JSON")
    openrc = openrc_argument(args[0])
    try:
        storage = json.loads(args[2])
    except ValueError:
        storage = None
    if not isinstance(storage, list) or not all(isinstance(s, type(u"")) and ":" in s for s in storage):
        raise ValueError('STORAGE_JSON: expected a JSON list of "ip:port" strings, got %r' % args[2])
    if "://" not in args[1]:
        raise ValueError("PROXY_URL: expected a URL like http://controller:8080, got %r" % args[1])
    return openrc, args[1], storage


def main(args):
    try:
        openrc, proxy_url, storage = arguments(args)
    except ValueError as error:
        print("cloud_ready.py: %s" % error, file=sys.stderr)
        return 2
    late = 0
    for name, check in checks(openrc, proxy_url, storage):
        try:
            check()
            print("ok %s" % name)
        except Late as why:
            late += 1
            print("late %s: %s" % (name, why))
        except Exception as error:  # this program's own bug: one line, no traceback
            late += 1
            print("late %s: cloud_ready.py failed: %s: %s" % (name, type(error).__name__, error))
        sys.stdout.flush()
    return 1 if late else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
