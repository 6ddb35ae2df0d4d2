"""Wait until a URL answers, at most SECONDS: `python3 wait_http.py URL SECONDS`.

GETs URL once a second. Any HTTP status below 500 is an answer (Keystone's 300 on /v3/,
a 401, a 404: the server is up); connection refused, timeouts and 5xx mean "not yet".
Exit 0 as soon as it answered; after SECONDS, exit 1 with
`URL does not answer after N s: <last error>` on stderr. Exit 2 for bad arguments.
SECONDS 0 asks once (what the install's facts ask: a service that is not up yet must not
hold the facts of its own step while they wait for nothing).

Why: a service that was just (re)started, such as keystone under Apache or uwsgi, takes
seconds before it serves; this replaces a loop of shell and `python3 -c` text with one
program that says what it last saw. No proxy is used: the lab's hosts talk directly.
"""
from __future__ import print_function

import socket
import sys
import time

try:
    from http.client import HTTPException
    from urllib.error import HTTPError, URLError
    from urllib.request import HTTPRedirectHandler, ProxyHandler, build_opener
except ImportError:  # python 2.7
    from httplib import HTTPException
    from urllib2 import (
        HTTPError,
        HTTPRedirectHandler,
        ProxyHandler,
        URLError,
        build_opener,
    )

ATTEMPT_TIMEOUT = 3.0


class NoRedirect(HTTPRedirectHandler):
    """A redirect is an answer: the server is up, whatever it points to."""

    def redirect_request(self, *args, **kwargs):
        return None


def attempt(opener, url, timeout):
    """None when the server answered below 500, else what went wrong (one short phrase)."""
    try:
        opener.open(url, timeout=timeout).close()
        return None
    except HTTPError as error:
        return None if error.code < 500 else "HTTP %d %s" % (error.code, error.msg)
    except URLError as error:
        return str(getattr(error.reason, "strerror", None) or error.reason)
    except (socket.timeout, socket.error, HTTPException) as error:  # e.g. closed before the status line
        return str(error) or type(error).__name__
    except ValueError as error:  # a URL urllib cannot open at all
        return str(error)


def wait(url, seconds):
    opener = build_opener(ProxyHandler({}), NoRedirect())
    deadline = time.time() + seconds
    while True:
        left = deadline - time.time()
        error = attempt(opener, url, max(0.5, min(ATTEMPT_TIMEOUT, left)) if seconds else ATTEMPT_TIMEOUT)
        if error is None:
            return None
        left = deadline - time.time()
        if left <= 0:
            return error
        time.sleep(min(1.0, left))


def main(args):
    try:
        url, seconds = args[0], float(args[1])
        if len(args) != 2 or seconds < 0 or "://" not in url:
            raise ValueError()
    except (IndexError, ValueError):
        print("usage: wait_http.py URL SECONDS (e.g. http://controller:5000/v3 60)", file=sys.stderr)
        return 2
    error = wait(url, seconds)
    if error is None:
        return 0
    print("%s does not answer after %s s: %s" % (url, args[1], error), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
