"""The HTML report opens in headless Chromium (Debian's chromium package) and renders.

A screenshot is decoded with a small PNG reader (stdlib zlib; no imaging library needed for a few
pixel counts) and checked: the right size, not blank, the crisis banner red and at the top, and a
provisional result's amber status box. Chromium must be installed (``.ci/run`` installs it in CI);
without it these tests fail and say how to install it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from reportcases import load_record, ruleset_for

from iopscreen.reports import render_record

WIDTH, HEIGHT = 1000, 1400
CRISIS_RED = (0xB0, 0x00, 0x20)  # --crisis in reports/html.py
PROVISIONAL_AMBER = (0xFF, 0xF4, 0xD6)  # --warn-bg


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: the HTML report's screenshot test needs Debian's "
                    "chromium package (apt-get install -y chromium; .ci/run installs it in CI)")
    return path


def screenshot(html: str, tmp_path: Path) -> Path:
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / "report.png"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           f"--window-size={WIDTH},{HEIGHT}", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and png.exists(), (
        f"chromium exited {done.returncode} without a screenshot:\n{done.stderr[-2000:]}")
    return png


def read_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG: (width, height, rows, channels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, head = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert head is not None, "PNG without IHDR"
    width, height, depth, color, _, _, interlace = head
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unexpected PNG format {head}"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):  # undo the PNG row filter (spec section 9)
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ftype == 4:
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif ftype != 0:
                raise AssertionError(f"bad PNG filter {ftype}")
        rows.append(bytes(line))
        prev = line
    return width, height, rows, channels


def pixels(row: bytes, channels: int) -> list[tuple[int, int, int]]:
    return [(row[i], row[i + 1], row[i + 2]) for i in range(0, len(row), channels)]


def near(px: tuple[int, int, int], color: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(px, color))


def render(name: str) -> str:
    record = load_record(name)
    return render_record("html", record, ruleset_for(record["ruleset"]["id"]))


def test_crisis_report_renders_with_the_red_banner_on_top(tmp_path: Path) -> None:
    width, height, rows, channels = read_png(screenshot(render("default-crisis"), tmp_path)
                                             .read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    ink = sum(1 for row in rows for px in pixels(row, channels) if sum(px) < 600)
    assert ink > WIDTH * HEIGHT // 50, f"the page looks blank ({ink} non-white pixels)"
    red_rows = [y for y, row in enumerate(rows)
                if sum(near(px, CRISIS_RED) for px in pixels(row, channels)) > WIDTH // 2]
    assert red_rows, "no crisis banner: no row is mostly crisis red"
    assert red_rows[0] < 200, f"the crisis banner starts at y={red_rows[0]}, not at the top"
    assert len(red_rows) > 150, f"the crisis banner is only {len(red_rows)} px tall"


def test_provisional_report_has_no_banner_and_an_amber_status(tmp_path: Path) -> None:
    _, _, rows, channels = read_png(screenshot(render("default-provisional"), tmp_path)
                                    .read_bytes())
    all_px = [px for row in rows for px in pixels(row, channels)]
    assert sum(near(px, CRISIS_RED, 12) for px in all_px) < 200, "a crisis colour without a crisis"
    assert sum(near(px, PROVISIONAL_AMBER, 4) for px in all_px) > 2000, \
        "the provisional status box is not shown"
