"""The HTML release report: self-contained, one chart point per timeline event, verdicts marked, everything escaped."""

from html.parser import HTMLParser

from ansible_collections.bluegreen.aws.plugins.filter.report import FilterModule
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import ProgressFile
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import describe
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import table
from ansible_collections.bluegreen.aws.plugins.module_utils.report import render

EVIL = "<script>alert(1)</script>"
TIMELINE = [
    {"t": 0.0, "event": "start", "weights": {"blue": 100, "green": 0}, "reason": "canary at 0%"},
    {
        "t": 0.4,
        "event": "gates_passed",
        "weights": {"blue": 100, "green": 0},
        "gates": [{"name": "green-health", "verdict": "pass", "reason": "1 URL(s) healthy"}],
    },
    {"t": 0.5, "event": "weight", "weights": {"blue": 90, "green": 10}, "reason": "weight 10%"},
    {
        "t": 3.2,
        "event": "gate_failed",
        "weights": {"blue": 90, "green": 10},
        "reason": "green-health: HTTP 500",
        "gates": [{"name": "green-health", "verdict": "fail", "reason": f"HTTP 500 {EVIL}"}],
    },
    {"t": 3.3, "event": "rolled_back", "weights": {"blue": 100, "green": 0}, "reason": "all traffic on blue"},
]
RECORD = {
    "application": "web",
    "environment": "prod",
    "version": f"v3{EVIL}",
    "who": "ops@laptop",
    "started": "2026-12-01T12:00:00Z",
    "ended": "2026-12-01T12:00:04Z",
    "strategy": "local",
    "result": "rolled_back",
    "reason": f"traffic switch rolled_back: green-health {EVIL}",
    "timeline": TIMELINE,
    "lifecycle": [
        {
            "targetId": "i-0abc",
            "instanceLabel": "Green",
            "lifecycleEvents": [
                {"lifecycleEventName": "BeforeInstall", "status": "Succeeded"},
                {"lifecycleEventName": "ValidateService", "status": "Failed"},
            ],
        }
    ],
    "diagnostics": [{"instance_id": "i-0abc", "lifecycle_event": "ValidateService", "log_tail": f"curl {EVIL}"}],
}


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.text = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        self.text.append((tuple(self.stack), data))


def parse(html):
    page = Page()
    page.feed(html)
    page.close()
    return page


def test_report_is_self_contained_with_one_point_per_event_and_the_verdicts():
    html = FilterModule().filters()["release_report"](RECORD)
    page = parse(html)
    # nothing fetched: no script, no external reference of any kind
    assert not [t for t, a in page.tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    refs = [v for unused, a in page.tags for k, v in a.items() if k in ("src", "href") or k.startswith("on")]
    assert refs == []
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    # the chart: one marker per timeline event, the failing gate marked and its reason written beside it
    points = [a for t, a in page.tags if t == "circle" and a.get("class") == "event"]
    assert [p["data-event"] for p in points] == [e["event"] for e in TIMELINE]
    assert [p["data-verdict"] for p in points] == ["", "pass", "", "fail", ""]
    assert len([a for t, a in page.tags if t == "polyline"]) == 2
    labels = [d for stack, d in page.text if stack[-1:] == ("text",) and "green-health" in d]
    assert labels and "HTTP 500" in labels[0]
    # the summary, CodeDeploy lifecycle events and diagnostics
    text = "".join(d for unused, d in page.text)
    assert "rolled_back" in text and "ops@laptop" in text and "2026-12-01T12:00:00Z" in text
    assert "ValidateService" in text and "i-0abc" in text
    assert [a for t, a in page.tags if t == "table" and a.get("class") == "lifecycle"]


def test_every_value_is_escaped():
    html = render(RECORD)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse(html)
    assert not [t for t, unused in page.tags if t == "script"]
    # the escaped text reads back as what was given
    assert any(EVIL in d for unused, d in page.text)


def test_timeline_table_and_progress_lines(tmp_path):
    lines = table(TIMELINE)
    assert lines[0].split() == ["t", "(s)", "event", "weights", "gates", "reason"]
    assert len(lines) == len(TIMELINE) + 1
    assert "gate_failed" in lines[4] and "blue=90% green=10%" in lines[4] and "green-health fail" in lines[4]
    # columns are aligned: every row's weights column starts at the same offset
    assert len({line.index("blue=") for line in lines[1:]}) == 1
    writer = ProgressFile(str(tmp_path / "p.jsonl"), "traffic_switch", clock=lambda: 1000.0)
    writer(TIMELINE[3])
    assert (tmp_path / "p.jsonl").read_text().count("\n") == 1
    assert describe(TIMELINE[3]).startswith("gate_failed blue=90% green=10% gates: green-health fail")
    lifecycle = {"kind": "lifecycle", "instance": "i-1", "label": "Green", "lifecycle_event": "Install", "status": "Ok"}
    assert describe(lifecycle) == "instance i-1 (Green) Install: Ok"
    ProgressFile(str(tmp_path / "missing" / "p.jsonl"))({"event": "x"})  # never raises
