"""Live progress of codedeploy_deployment: the deployment's statuses and each green and blue instance's lifecycle events
(the agent running the bundle's hook scripts, AllowTraffic, BlockTraffic) are printed while the task runs, not only when
it ends. A real ansible-playbook run (default callback, stdout read as it streams) on the emulator."""

import re
import textwrap

from cdfleet import fleet
from conftest import emulator_play
from conftest import stream_playbook
from conftest import task_lines

PROGRESS = re.compile(r"^\[localhost\] codedeploy_deployment \d\d:\d\d:\d\d (.*)$")
LIFECYCLE = re.compile(r"^instance (i-[0-9a-f]+) \((Blue|Green)\) (\w+): (\w+)$")


def test_statuses_and_lifecycle_events_appear_while_the_deployment_runs(emulator, revisions, tmp_path):
    f = fleet(emulator, blue_revision="app-good.zip")
    tasks = textwrap.dedent("""\
        - name: deploy the good revision
          bluegreen.aws.codedeploy_deployment:
            application: web
            deployment_group: web-dg
            revision: {bucket: releases, key: app-good.zip}
            poll_interval: 0.2
        """)
    playbook = emulator_play(tasks, emulator.endpoint, tmp_path)
    lines = stream_playbook(["-i", "localhost,", "-c", "local", str(playbook)])
    printed, task_end = task_lines(lines, "deploy the good revision")
    progress = [(t, PROGRESS.match(line).group(1)) for t, line in printed if PROGRESS.match(line)]
    lifecycle = [(t, LIFECYCLE.match(text).groups()) for t, text in progress if LIFECYCLE.match(text)]
    statuses = [text.split()[0] for unused, text in progress if not LIFECYCLE.match(text)]
    assert "InProgress" in statuses and statuses[-1] == "Succeeded", statuses

    # every green instance's hook events and its AllowTraffic, every blue instance's BlockTraffic, each as it succeeded
    succeeded = {(i, label, event) for unused, (i, label, event, state) in lifecycle if state == "Succeeded"}
    green = {instance for instance, label, unused in succeeded if label == "Green"}
    assert len(green) == 2 and not green & set(f["blue"]), succeeded
    for instance in green:
        for event in ("BeforeInstall", "ApplicationStart", "ValidateService", "AllowTraffic"):
            assert (instance, "Green", event) in succeeded, (instance, event, sorted(succeeded))
    for instance in f["blue"]:
        assert (instance, "Blue", "BlockTraffic") in succeeded, (instance, sorted(succeeded))

    # printed as it happened: the first hook line arrived well before the task ended, the events spread over the run
    first = min(t for t, unused in lifecycle)
    last = max(t for t, unused in lifecycle)
    assert task_end - first > 2.0 and last - first > 1.0, (first, last, task_end)
