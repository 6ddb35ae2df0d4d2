"""A small load on the cloud, from the controller: N clients issuing tokens and putting and getting objects.

    python3 cloud_load.py OPENRC SECONDS CLIENTS
    e.g.    python3 cloud_load.py /root/demo-openrc 30 4

Why: Tempest, run with two workers, once had Keystone close a connection it was about to use
("Connection reset by peer"); a load that reuses connections as real clients do finds such a
server at once, and `make bench-cloud` keeps its figures.

Each client keeps its connections open between requests and reuses them, as the OpenStack
clients and Tempest do (python-requests over urllib3): before a reuse it looks whether the
server has closed the connection and opens a new one if so, as urllib3 does. So a server
that drops a connection a client may still use (the "Connection reset by peer" Tempest met
with two workers) shows up here as an error, not as a slow request.

Every client, until SECONDS have passed: a token (POST /v3/auth/tokens), an object PUT
into its own container, the object GET back and compared. At the end every object and
container made is deleted, and one JSON line is printed:
  {"clients": N, "seconds": S, "requests": R, "errors": E, "error_kinds": {...},
   "ops": {"token": {"count": n, "p50_ms": x, "p99_ms": y}, "put": {...}, "get": {...}}}
Exit 0 when no request failed, 1 when any did, 2 for bad arguments or openrc.
Bounded: at most SECONDS (<= 600) and CLIENTS (<= 32); it talks only to the lab's own hosts,
never through a proxy. The password and the tokens are never printed.
"""
from __future__ import print_function

import binascii
import json
import os
import select
import socket
import sys
import threading
import time

try:
    from http.client import HTTPConnection, HTTPException, HTTPSConnection
    from urllib.parse import urlsplit
except ImportError:  # python 2.7
    from httplib import HTTPConnection, HTTPException, HTTPSConnection
    from urlparse import urlsplit
import ssl

import cloud_ready

MAX_SECONDS = 600
MAX_CLIENTS = 32
TIMEOUT = 30.0
OBJECT_BYTES = 4096


class Failed(Exception):
    """A request that did not give the answer a user expects; its kind is the message."""


class Connections(object):
    """One persistent connection per server, reused while the server keeps it open."""

    def __init__(self):
        self.open = {}

    def request(self, method, url, body=None, headers=None):
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        conn = self.open.get(key)
        if conn is not None and _closed_by_server(conn):
            conn.close()
            conn = None
        if conn is None:
            conn = self.open[key] = _connection(parts)
        path = cloud_ready.native(parts.path + ("?" + parts.query if parts.query else ""))
        headers = dict((cloud_ready.native(k), cloud_ready.native(v)) for k, v in (headers or {}).items())
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (socket.error, socket.timeout, HTTPException) as error:
            conn.close()
            del self.open[key]
            raise Failed(_kind(error))
        if response.will_close:
            conn.close()
            del self.open[key]
        return response.status, response, data

    def close(self):
        for conn in self.open.values():
            conn.close()
        self.open = {}


def _connection(parts):
    """HTTP, or HTTPS checked against the system's CAs (the catalog's public endpoints are the
    front door's https URLs; the controller trusts the lab's CA)."""
    if parts.scheme == "https":
        return HTTPSConnection(parts.hostname, parts.port or 443, timeout=TIMEOUT,
                               context=ssl.create_default_context())
    return HTTPConnection(parts.hostname, parts.port or 80, timeout=TIMEOUT)


def _closed_by_server(conn):
    """urllib3's check before it reuses a connection: readable now means the server closed it."""
    sock = getattr(conn, "sock", None)
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _kind(error):
    name = type(error).__name__
    number = getattr(error, "errno", None)
    return "%s [errno %s]" % (name, number) if number else name


class Client(threading.Thread):
    def __init__(self, index, openrc, deadline, results):
        threading.Thread.__init__(self, name="client-%d" % index)
        self.daemon = True
        self.openrc, self.deadline, self.results = openrc, deadline, results
        self.conns = Connections()
        self.container = "lab-load-%s-%d" % (binascii.hexlify(os.urandom(4)).decode("ascii"), index)
        self.made = []

    def timed(self, op, function):
        started = time.time()
        try:
            value = function()
        except Failed as failed:
            self.results.error(op, str(failed))
            return None
        self.results.done(op, time.time() - started)
        return value

    def token(self):
        auth_url = self.openrc["OS_AUTH_URL"].rstrip("/")
        if not auth_url.endswith("/v3"):
            auth_url += "/v3"
        body = json.dumps(cloud_ready.token_request(self.openrc)).encode("utf-8")
        status, response, data = self.conns.request("POST", auth_url + "/auth/tokens", body,
                                                    {"Content-Type": "application/json"})
        if status != 201:
            raise Failed("token HTTP %d" % status)
        try:
            return response.getheader("X-Subject-Token"), cloud_ready.object_store_url(
                json.loads(data.decode("utf-8")), self.openrc)
        except (ValueError, KeyError, AttributeError, cloud_ready.Late) as error:
            raise Failed("token answer: %s" % (str(error) or type(error).__name__))

    def put_get(self, auth, storage_url, number):
        url = "%s/%s/object-%d" % (storage_url, self.container, number)
        data = os.urandom(OBJECT_BYTES)
        status = self.conns.request("PUT", url, data, {"X-Auth-Token": auth})[0]
        if status != 201:
            raise Failed("object PUT HTTP %d" % status)
        self.made.append(url)
        return url, data

    def get(self, auth, url, data):
        status, _, got = self.conns.request("GET", url, None, {"X-Auth-Token": auth})
        if status != 200 or got != data:
            raise Failed("object GET HTTP %d" % status if status != 200 else "object GET other bytes")

    def run(self):
        number = 0
        container_made = False
        try:
            while time.time() < self.deadline:
                found = self.timed("token", self.token)
                if found is None:
                    continue
                auth, storage_url = found
                if not container_made:
                    url = "%s/%s" % (storage_url, self.container)
                    status = self.conns.request("PUT", url, b"", {"X-Auth-Token": auth})[0]
                    if status not in (201, 202):
                        raise Failed("container PUT HTTP %d" % status)
                    container_made = True
                    self.made.insert(0, url)
                number += 1
                put = self.timed("put", lambda: self.put_get(auth, storage_url, number))
                if put is not None:
                    self.timed("get", lambda: self.get(auth, put[0], put[1]))
            self.clean(auth if number else None)
        except Failed as failed:
            self.results.error("setup", str(failed))
        finally:
            self.conns.close()

    def clean(self, auth):
        if auth is None:
            return
        for url in reversed(self.made):  # objects first, the container last
            try:
                self.conns.request("DELETE", url, None, {"X-Auth-Token": auth})
            except Failed as failed:
                self.results.left.append("%s (%s)" % (url.rsplit("/", 2)[-2], failed))


class Results(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.times = {"token": [], "put": [], "get": []}
        self.kinds = {}
        self.left = []

    def done(self, op, seconds):
        with self.lock:
            self.times[op].append(seconds)

    def error(self, op, kind):
        with self.lock:
            key = "%s: %s" % (op, kind)
            self.kinds[key] = self.kinds.get(key, 0) + 1

    def summary(self, clients, seconds):
        errors = sum(self.kinds.values())
        ops = dict((op, _percentiles(times)) for op, times in self.times.items())
        requests = sum(len(times) for times in self.times.values()) + errors
        return {"clients": clients, "seconds": round(seconds, 1), "requests": requests, "errors": errors,
                "error_kinds": self.kinds, "ops": ops, "left_behind": self.left}


def _percentiles(times):
    if not times:
        return {"count": 0, "p50_ms": None, "p99_ms": None}
    ordered = sorted(times)

    def at(fraction):
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)

    return {"count": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99)}


def arguments(args):
    if len(args) != 3:
        raise ValueError("usage: cloud_load.py OPENRC SECONDS CLIENTS")
    openrc = cloud_ready.openrc_argument(args[0])
    if "OS_AUTH_URL" not in openrc:
        raise ValueError("%s: a Keystone openrc is needed (the load issues Keystone tokens)" % args[0])
    if not args[1].isdigit() or not 1 <= int(args[1]) <= MAX_SECONDS:
        raise ValueError("SECONDS: expected 1 to %d, got %r" % (MAX_SECONDS, args[1]))
    if not args[2].isdigit() or not 1 <= int(args[2]) <= MAX_CLIENTS:
        raise ValueError("CLIENTS: expected 1 to %d, got %r" % (MAX_CLIENTS, args[2]))
    return openrc, int(args[1]), int(args[2])


def main(args):
    try:
        openrc, seconds, clients = arguments(args)
    except ValueError as error:
        print("cloud_load.py: %s" % error, file=sys.stderr)
        return 2
    results, started = Results(), time.time()
    threads = [Client(i, openrc, started + seconds, results) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 4 * TIMEOUT)
    summary = results.summary(clients, time.time() - started)
    print(json.dumps(summary, sort_keys=True))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
