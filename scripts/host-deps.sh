#!/usr/bin/env bash
# Install the Debian packages the sim twin needs on this host, when missing.
# As root: installs them. Otherwise: one line saying what is needed, exit 2.
# --for-tests: called by `make test`; outside CI a non-root user only gets a notice
# (the end-to-end test then skips and says why), in CI it must work.
set -euo pipefail
need=(systemd-container debootstrap nftables xfsprogs iproute2 util-linux openssh-client dnsmasq-base)
# Only for the tests: the report page's browser test renders report.html in Debian's chromium
# (headless), with a font for its screenshot.
browser=(chromium fonts-dejavu-core)
# The dashboard's browser test drives it through chromedriver (selenium), trusting the lab CA in an
# NSS database made with certutil.
browser+=(chromium-driver libnss3-tools)
# And Keystone's web server on Debian 12, uwsgi, serves Debian's keystone-uwsgi.ini as the lab
# leaves it on 127.0.0.1 (tests/test_keystone_uwsgi.py).
uwsgi=(uwsgi-core uwsgi-plugin-python3)
if [ "${1:-}" = "--for-tests" ]; then need+=("${browser[@]}" "${uwsgi[@]}"); fi
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if [ "${1:-}" = "--for-tests" ] && [ "${CI:-}" != "true" ]; then
    echo "note: the sim end-to-end test and the report's browser test need root and: ${missing[*]}; they will skip" >&2
    exit 0
  fi
  echo "the sim target needs root and the Debian packages: ${missing[*]} (run as root, or TARGET=aws)" >&2
  exit 2
fi
if ! command -v apt-get >/dev/null; then
  echo "the sim target needs a Debian-based host with apt-get to install: ${missing[*]}" >&2
  exit 2
fi
echo "installing host packages for the sim twin: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
