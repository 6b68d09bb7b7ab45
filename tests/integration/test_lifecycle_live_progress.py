"""Live progress of lifecycle_action: the instances found waiting, each round of health checks and each completion are
printed while the task runs, not only when it ends. A real ansible-playbook run (default callback, stdout read as it
streams) on the emulator, where instances really wait in Pending:Wait."""

import http.server
import re
import textwrap
import threading
import time

from conftest import emulator_play
from conftest import stream_playbook
from conftest import task_lines
from test_lifecycle_action_emulator import scale_out
from test_lifecycle_action_emulator import states

PROGRESS = re.compile(r"^\[localhost\] lifecycle_action (\d\d:\d\d:\d\d) (\S+)")
HOOK = "web-warmup"
HEALTHY_AFTER = 3.0  # seconds after the first health check: the instances' health endpoint answers 503 until then


def health_server():
    first = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            first.append(time.monotonic())
            self.send_response(200 if time.monotonic() - first[0] > HEALTHY_AFTER else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_health_rounds_and_completions_appear_while_the_task_runs(emulator, tmp_path):
    asg = scale_out(emulator, 2, hook=HOOK)
    server = health_server()
    tasks = textwrap.dedent(f"""\
        - name: complete after the health check
          bluegreen.aws.lifecycle_action:
            group_name: web
            poll_interval: 1
            health_check:
              url: "http://127.0.0.1:{server.server_port}/{{instance_id}}"
              interval: 1
              failure_threshold: 20
              wait_timeout: 60
        """)
    playbook = emulator_play(tasks, emulator.endpoint, tmp_path)
    try:
        lines = stream_playbook(["-i", "localhost,", "-c", "local", str(playbook)])
    finally:
        server.shutdown()
    printed, task_end = task_lines(lines, "complete after the health check")
    progress = [(t, PROGRESS.match(line).group(2)) for t, line in printed if PROGRESS.match(line)]
    events = [event for unused, event in progress]
    assert events[0] == "waiting" and events.count("completed") == 2 and "states" in events, printed
    rounds = [t for t, event in progress if event == "gates"]
    assert len(rounds) >= 2, events  # 503 first: more than one round before the instances pass
    # printed as it happened: the first round arrived well before the task ended (the instances were healthy only
    # after HEALTHY_AFTER seconds)
    assert task_end - rounds[0] > 1.5, (rounds, task_end)
    assert set(states(asg).values()) == {"InService"}
