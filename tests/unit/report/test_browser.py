"""What a browser shows of a report: headless Chromium (Debian's package; tests/setup.sh installs
it) renders the page of a real deploy record (conftest.py) and we read its DOM and screenshot.

Marked `browser`: not a fleet test, so `-m "not e2e"` runs it too. Without chromium it is
skipped with the reason, except in CI (CI=true, or OXZ_REQUIRE_FLEET=1 as tests/run.sh sets):
there it fails, since tests/setup.sh installs chromium.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from oxzep7_deploy.report import style
from tests.unit.report.conftest import HOSTILE, NAME, Deploy, invoke_json

pytestmark = pytest.mark.browser
IN_CI = os.environ.get("CI", "").lower() == "true" or os.environ.get("OXZ_REQUIRE_FLEET") == "1"
WINDOW = (1100, 900)


@pytest.fixture
def chromium(tmp_path: Path) -> list[str]:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        why = "chromium is not installed (tests/setup.sh installs it: apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"in CI, but {why}", pytrace=False)
        pytest.skip(why)
    return [found, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}"]


@pytest.fixture
def page(rolled_back: Deploy, tmp_path: Path) -> Path:
    code, doc, err = invoke_json("report", NAME, "-o", str(tmp_path / "report.html"))
    assert code == 0, (doc, err)
    return Path(doc["path"])


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_chromium_shows_the_hosts_the_outcome_the_wave_lines_and_the_message_as_text(
        chromium: list[str], page: Path) -> None:
    dom = run([*chromium, "--dump-dom", page.as_uri()]).stdout
    for host in ("web-1", "web-2", "web-3"):
        assert f'<g class="host-row" data-host="{host}">' in dom, host
    assert 'class="badge outcome"' in dom and ">rolled-back</span>" in dom
    assert '<g class="gate-line wave-line" data-wave="canary">' in dom
    assert '<g class="gate-line wave-line" data-wave="all">' in dom
    assert '<g class="gate-line promoted-line" data-wave="all">' in dom
    assert "<script" not in dom, "the host's message did not become a script"
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in dom, "the browser holds the message as text"


def test_the_screenshot_shows_the_timeline_in_its_colours(chromium: list[str], page: Path,
                                                          tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    run([*chromium, f"--screenshot={shot}", page.as_uri()])
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == WINDOW
    colours = set(pixels)
    assert len(colours) > 20, "not a blank page"
    for name in ("PREPARED", "GOOD", "ROLLED_BACK", "FAILED"):
        rgb = bytes.fromhex(getattr(style, name)[1:])
        assert rgb in colours, f"no {name} ({getattr(style, name)}) pixel on the page"


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB of every pixel of an 8-bit RGB or RGBA PNG (what Chromium
    writes); stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    pixels: list[bytes] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        pixels += [bytes(line[i:i + 3]) for i in range(0, stride, channels)]
        previous = line
    return width, height, pixels


def _unfilter(kind: int, line: bytearray, up: bytearray, bpp: int) -> None:
    if kind == 0:
        return
    if kind == 2:
        line[:] = bytes((a + b) & 0xFF for a, b in zip(line, up, strict=True))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + up[i]) >> 1)) & 0xFF
        else:
            corner = up[i - bpp] if i >= bpp else 0
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            best = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
            line[i] = (line[i] + best) & 0xFF
