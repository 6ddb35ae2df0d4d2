"""Does the package archive still serve this pocket? `python3 apt_pocket.py URL SECONDS FALLBACK_OS`.

GETs URL (a pocket's Release file, e.g. .../ubuntu/dists/bionic-updates/rocky/Release) once,
at most SECONDS. Exit 0 when it answers 2xx. Otherwise exit 1 with one line on stderr that
names the URL, what it answered (HTTP 404, or why it could not be reached) and the lab's
fallback (`openstack: {os: FALLBACK_OS}` in the lab's config). Exit 2 for bad arguments.

Why: OpenStack Rocky went end of life in 2020; whether the Ubuntu Cloud Archive still serves
`bionic-updates/rocky` is the archive's decision, not the lab's. Without this question a
missing pocket shows up halfway through `lab install`, as an apt error about a repository
with no Release file, after minutes of apt. The host asks, not the machine running the lab:
it is the host's way to the archive (and its proxy, from the environment, as apt's) that counts.
"""
from __future__ import print_function

import socket
import sys

try:
    from http.client import HTTPException
    from urllib.error import HTTPError, URLError
    from urllib.request import urlopen
except ImportError:  # python 2.7
    from httplib import HTTPException
    from urllib2 import HTTPError, URLError, urlopen


def ask(url, seconds):
    """None when the archive has the file, else what it answered or why it could not be asked."""
    try:
        urlopen(url, timeout=seconds).close()
        return None
    except HTTPError as error:
        return "HTTP %d %s" % (error.code, error.msg)
    except URLError as error:
        return "not reachable: %s" % (getattr(error.reason, "strerror", None) or error.reason)
    except (socket.timeout, socket.error, HTTPException) as error:
        return "not reachable: %s" % (str(error) or type(error).__name__)
    except ValueError as error:  # a URL urllib cannot open at all
        return "not a URL urllib can open: %s" % error


def main(args):
    if len(args) != 3 or not args[1].isdigit() or int(args[1]) < 1:
        print("usage: apt_pocket.py URL SECONDS FALLBACK_OS (SECONDS a whole number from 1)", file=sys.stderr)
        return 2
    url, seconds, fallback = args[0], int(args[1]), args[2]
    answer = ask(url, seconds)
    if answer is None:
        return 0
    if answer.startswith("HTTP 404") or answer.startswith("HTTP 410"):
        why = "the archive no longer serves this release"
    else:
        why = "the host could not ask the archive (its outbound access, DNS or proxy)"
    print("package archive: %s answered %s within %d s: %s; the lab cannot install from it. "
          "The fallback is `openstack: {os: %s}` in the lab's config (then `lab down` and `lab up`)"
          % (url, answer, seconds, why, fallback), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
