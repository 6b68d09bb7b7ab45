"""Live progress: a canary's steps, pauses and gate evaluations are printed while the traffic_switch task runs, not
only when it ends; the final timeline prints as a table. A real ansible-playbook run of playbooks/site.yml (local
strategy, real HAProxy and app slots), its stdout read line by line as it streams."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

from conftest import stream_playbook
from dataplane import local_host

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
SITE = os.path.join(ROOT, "playbooks", "site.yml")
SVC = os.path.join(ROOT, "roles", "local_bluegreen", "files", "bluegreen_svc.py")
PROGRESS = re.compile(r"^\[localhost\] traffic_switch (\d\d:\d\d:\d\d) (\S+)")


def stream(extra, timeout=300, rc=0):
    """Run site.yml with the default (human) callback; returns [(seconds since start, line)]."""
    return stream_playbook(["-i", INVENTORY, SITE, "-e", json.dumps(extra)], timeout=timeout, rc=rc)


def test_canary_steps_appear_while_the_task_runs_and_the_timeline_is_a_table(tmp_path):
    base = tmp_path / "host"
    host = local_host(tmp_path)
    try:
        stream(dict(host, release_version="v1", local_bluegreen_steps=[{"weight": 100}]))
        # three canary steps, each followed by a pause long enough to see the lines arrive one by one
        steps = [{"weight": 10}, {"pause": 1.5}, {"weight": 50}, {"pause": 1.5}, {"weight": 100}]
        lines = stream(dict(host, release_version="v2", local_bluegreen_steps=steps))
        # a broken v3: its gate fails during the pause, the switch rolls back, and the report says so
        broken = [{"weight": 20}, {"pause": 30}, {"weight": 100}]
        failed = stream(
            dict(host, release_version="v3", local_bluegreen_steps=broken, release_app_args=["--fail-after", "2"]), rc=1
        )
    finally:
        for pidfile in (base / "run").glob("*.pid"):
            subprocess.run([sys.executable, SVC, "stop", pidfile.stem, "--dir", str(base / "run")], check=False)

    text = [line for unused, line in lines]
    task = next(
        i
        for i, line in enumerate(text)
        if line.startswith("TASK [") and "Move the traffic to the new slot in health-gated steps]" in line
    )
    # the task's own result line ("changed: [localhost]") is printed when the task ends
    end = next(i for i in range(task + 1, len(text)) if text[i].startswith(("changed: [localhost]", "ok: [local")))
    progress = [(lines[i][0], PROGRESS.match(text[i])) for i in range(task + 1, end) if PROGRESS.match(text[i])]
    events = [m.group(2) for unused, m in progress]
    weights = [text[i] for i in range(task + 1, end) if PROGRESS.match(text[i]) and " weight " in text[i]]
    assert len(weights) == 3, text[task:end]
    assert ["green=10%" in weights[0], "green=50%" in weights[1], "green=100%" in weights[2]] == [True] * 3
    assert {"start", "gates", "gates_passed", "weight", "pause_done", "done"} <= set(events), events
    # printed as it happened: the first step's line arrived well before the task ended (two pauses of 1.5 s later)
    first_weight = next(t for t, m in progress if m.group(2) == "weight")
    task_end = lines[end][0]
    assert task_end - first_weight > 2.5, (first_weight, task_end)
    arrivals = [t for t, m in progress if m.group(2) == "weight"]
    assert arrivals[1] - arrivals[0] > 1.0 and arrivals[2] - arrivals[1] > 1.0, arrivals

    # the final timeline: a table (header, one aligned row per event), not JSON strings
    header = next(i for i, line in enumerate(text) if line.strip().startswith("t (s)") and "event" in line)
    assert "weights" in text[header] and "gates" in text[header] and "reason" in text[header]
    rows = []
    for line in text[header + 1 :]:
        if not re.match(r"^\s+\d+\.\d\s", line):
            break
        rows.append(line)
    assert [r.split()[1] for r in rows if r.split()[1] == "weight"] == ["weight"] * 3
    assert any("blue=0% green=100%" in r for r in rows)
    assert not [line for line in text if '{\\"t\\"' in line or '"{\\"' in line]

    # the HTML report of each release: its path printed at the end, the file self-contained
    reports = {}
    for run in (lines, failed):
        (said,) = [line for unused, line in run if "release report (" in line]
        result, path = re.search(r"release report \((\w+)\): (\S+?)\"?$", said).groups()
        reports[result] = path
    assert set(reports) == {"success", "rolled_back"}
    page = ReportPage()
    page.feed(open(reports["rolled_back"], encoding="utf-8").read())
    assert not [a for t, a in page.tags for k in a if k in ("src", "href")]
    assert not [t for t, unused in page.tags if t == "script"]
    points = [a for t, a in page.tags if t == "circle" and a.get("class") == "event"]
    rows = [a for t, a in page.tags if t == "tr"]
    # one point per timeline event (the table's rows, less its header): start, the failed gate, the verified rollback
    assert len(points) == len(rows) - 1 >= 3
    assert "fail" in [p["data-verdict"] for p in points]
    text = "".join(page.text)
    # v3 went into the idle slot (blue, v2 is on green): its gate failed with the status the app answered
    assert "rolled_back" in text and "v3" in text and "blue-health" in text and "503" in text


class ReportPage(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)
