"""The report page in a real browser: Debian's chromium, headless, opens report.html from disk,
its DOM shows every host and phase, and its screenshot is the page drawn (bars in their colours).

Needs /usr/bin/chromium (`scripts/host-deps.sh --for-tests` installs it as root): in CI a
missing browser fails the test, elsewhere it skips saying why.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest
from plan_fixtures import SECRET, SECRETS, inventory, plan_for
from test_report_page import parse, synthetic_checks, synthetic_run

from bootstrap.report_html import write_install_report, write_verify_report
from bootstrap.report_html.style import CSS
from labcore.paths import LabPaths

# The flags Debian's chromium needs here: root (no sandbox), no GPU, and none of its own
# network traffic (this machine's network is closed; a test reaches nothing but the file).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic")
WINDOW = (1280, 900)
BROWSER_SECONDS = 120


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    why = "Debian's chromium is not installed (scripts/host-deps.sh --for-tests installs it as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"in CI the report's browser test must run: {why}")
    pytest.skip(why)


def _browse(chromium: str, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=BROWSER_SECONDS, check=False,
                          env={**os.environ, "HOME": str(tmp_path)})


def _css_colour(name: str) -> bytes:
    """The RGB bytes of a --name colour of the stylesheet."""
    start = CSS.index(f"--{name}:#") + len(name) + 4
    return bytes.fromhex(CSS[start:start + 6])


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of RGB(A) bytes of an 8-bit truecolour PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        header = struct.unpack(">IIBBBBB", body) if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour = header[:4]
    assert depth == 8 and colour in (2, 6), f"unexpected PNG type {depth}/{colour}"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(b for i in range(0, stride, bpp) for b in line[i:i + 3]))
        prev = line
    return width, height, rows


@pytest.fixture
def report_page():
    """A failed install (the controller's rings failed) and a verify, as `lab install` and `lab verify` write them."""
    _, plan = plan_for("debian-12")
    inv = inventory("debian-12")
    paths = LabPaths.for_lab(inv.lab)
    write_install_report(paths, inv, synthetic_run(plan, [n.name for n in inv.nodes], ("controller", "swift-rings")),
                         SECRETS, print, plan)
    page = write_verify_report(paths, inv, synthetic_checks(), SECRETS, print)
    return page, plan, inv


def test_chromium_renders_the_report_with_every_host_and_phase(report_page, tmp_path):
    page, plan, inv = report_page
    chromium = _chromium()

    done = _browse(chromium, tmp_path, page, "--dump-dom")

    assert done.returncode == 0, done.stderr[-2000:]
    dom = parse(done.stdout)
    assert list(dom.hosts) == [n.name for n in inv.nodes]
    for node in inv.nodes:
        assert set(dom.hosts[node.name]) == {s.phase for s in plan.for_host(node.name)}
    assert dom.hosts["controller"]["swift-rings"]["outcome"] == "failed"
    assert [r[2] for r in dom.rows if r] == ["PASS" if c.passed else "FAIL" for c in synthetic_checks()]
    assert "script" not in dom.tags and SECRET not in done.stdout  # the escaped <script> stayed text


def test_chromium_takes_a_screenshot_of_the_drawn_page(report_page, tmp_path):
    page, _, _ = report_page
    chromium = _chromium()
    shot = tmp_path / "report.png"

    done = _browse(chromium, tmp_path, page, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}")

    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 20_000  # a drawn page, not an empty frame
    width, height, rows = png_pixels(data)
    assert (width, height) == WINDOW
    colours = Counter(row[i:i + 3] for row in rows[::2] for i in range(0, len(row), 6))
    assert colours.most_common(1)[0][1] < 0.6 * sum(colours.values()), "one colour fills the screenshot"
    for name in ("changed", "failed"):  # the bars are drawn in their outcome's colour
        assert colours[_css_colour(name)] > 50, f"no {name} bar in the screenshot"


@pytest.mark.parametrize("ci,outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_chromium_fails_in_ci_and_skips_elsewhere_saying_why(monkeypatch, ci, outcome):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="chromium is not installed .*host-deps.sh --for-tests"):
        _chromium()
