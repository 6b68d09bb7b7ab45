"""The HTML report of a rolled-back release opened in a real browser (Debian's chromium-headless-shell): the DOM it
builds has the chart (one marker per timeline event, the failing one marked, its reason written) and the screenshot
it takes shows the chart drawn (the failing marker's red, the pools' lines)."""

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

from ansible_collections.bluegreen.aws.plugins.module_utils.report import COLOURS
from ansible_collections.bluegreen.aws.plugins.module_utils.report import POOL_COLOURS
from ansible_collections.bluegreen.aws.plugins.module_utils.report import render

BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
EVIL = "<script>document.title='pwned'</script>"
# the timeline of a real rolled-back local release (test_live_progress's v3), its reason made hostile
TIMELINE = [
    {"t": 0.0, "event": "start", "weights": {"blue": 0, "green": 100}, "reason": "canary at 0%"},
    {
        "t": 0.2,
        "event": "gate_failed",
        "weights": {"blue": 0, "green": 100},
        "reason": "blue-health: status 503",
        "gates": [{"name": "blue-health", "verdict": "fail", "reason": f"status 503 not in [200] {EVIL}"}],
    },
    {
        "t": 0.2,
        "event": "rolled_back",
        "weights": {"blue": 0, "green": 100},
        "reason": "all traffic on the stable pool",
    },
]
RECORD = {
    "application": "web",
    "environment": "prod",
    "version": "v3",
    "who": "ops@laptop",
    "strategy": "local",
    "result": "rolled_back",
    "reason": f"traffic switch rolled_back: blue-health {EVIL}",
    "timeline": TIMELINE,
}


def browser(*args, timeout=120):
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def png_pixels(path):
    """The RGBA/RGB pixels of an 8-bit non-interlaced PNG (what chromium writes), decoded with zlib only."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, unused, unused_filter, interlace = header
    assert depth == 8 and interlace == 0 and colour in (2, 6)
    bpp = 4 if colour == 6 else 3
    raw, stride, rows, prev, i = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp), 0
    for _row in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        prev = line
    return [tuple(row[x : x + 3]) for row in rows for x in range(0, stride, bpp)]


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_rolled_back_report_renders_its_chart_and_failing_reason_in_chromium(tmp_path):
    assert BROWSER, "chromium-headless-shell is not installed (make deps installs it)"
    page = tmp_path / "report.html"
    page.write_text(render(RECORD), encoding="utf-8")
    dom = Dom()
    dom.feed(browser("--dump-dom", page.as_uri()))
    # the DOM the browser built: no script ran or exists, the title is ours, the chart is there
    assert not [t for t, unused in dom.tags if t == "script"]
    text = "".join(dom.text)
    assert "pwned" not in text.split("Release", maxsplit=1)[0] and "Release web prod v3" in text
    markers = [a for t, a in dom.tags if t == "circle" and a.get("class") == "event"]
    assert [m["data-event"] for m in markers] == [e["event"] for e in TIMELINE]
    assert [m["data-verdict"] for m in markers] == ["", "fail", ""]
    labels = [a for t, a in dom.tags if t == "text" and a.get("class") == "reason"]
    assert len(labels) == 1 and "blue-health: status 503" in text
    assert EVIL in text  # shown as text, not run

    shot = tmp_path / "report.png"
    browser(f"--screenshot={shot}", "--window-size=1000,900", "--hide-scrollbars", page.as_uri())
    pixels = png_pixels(shot)

    def count(hex_colour):
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return sum(1 for p in pixels if all(abs(p[k] - rgb[k]) <= 12 for k in range(3)))

    assert count(COLOURS["fail"]) > 40  # the failing marker (r=6) and its reason's red text
    assert count(POOL_COLOURS[0]) > 100 and count(POOL_COLOURS[1]) > 100  # both pools' lines
