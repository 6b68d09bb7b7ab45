"""roles/release_notify against receivers on loopback: the documented fields arrive; a dead URL changes nothing."""

import http.server
import json
import threading

import pytest
from conftest import run_tasks
from dataplane import free_port

WARN = "Warn about the notifiers that failed (the release goes on)"
FIELDS = {
    "event",
    "application",
    "environment",
    "version",
    "from_version",
    "strategy",
    "who",
    "reason",
    "at",
    "details",
}


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.status = [], 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Receiver
    server.shutdown()


def notify(event, webhook, slack, reason="", extra=""):
    return f"""\
- name: notify {event}
  ansible.builtin.include_role:
    name: bluegreen.aws.release_notify
  vars:
    release_notify_event: {event}
    release_notify_application: web
    release_notify_environment: prod
    release_notify_version: ABC-1-web-20260101120000
    release_notify_from_version: ABC-0-web-20251231120000
    release_notify_strategy: local
    release_notify_reason: "{reason}"
    release_notify_details: {{lock_id: L1, record: bluegreen/web/prod/history/x.json, api_token: hunter2}}
    release_notify_webhook_url: "{webhook}"
    release_notify_slack_webhook_url: "{slack}"
{extra}- name: after {event}
  ansible.builtin.debug:
    msg: "failures={{{{ release_notify_failures }}}}"
"""


def test_start_success_failure_rollback_arrive_with_the_documented_fields(receiver, tmp_path):
    url, handler = receiver
    webhook, slack = f"{url}/hook/T000/secret-part", f"{url}/slack/T000/B000/XXXX"
    tasks = notify("start", webhook, slack) + notify("success", webhook, slack)
    tasks += notify("failure", webhook, slack, "gate green-health failed") + notify("rollback", webhook, slack, "x")
    rc, results, report = run_tasks(tasks, tmp_path)
    assert rc == 0, results
    hooks = [body for path, body in handler.received if path.startswith("/hook/")]
    slacks = [body for path, body in handler.received if path.startswith("/slack/")]
    assert [h["event"] for h in hooks] == ["start", "success", "failure", "rollback"]
    for body in hooks:
        assert set(body) == FIELDS
        assert body["application"] == "web" and body["environment"] == "prod" and "@" in body["who"]
        assert body["details"] == {
            "lock_id": "L1",
            "record": "bluegreen/web/prod/history/x.json",
            "api_token": "REDACTED",
        }
    assert hooks[2]["reason"] == "gate green-health failed"
    assert len(slacks) == 4 and slacks[0]["text"].startswith(":rocket: web/prod ABC-1-web-20260101120000: start by ")
    assert {f["title"] for f in slacks[2]["attachments"][0]["fields"]} >= {"event", "version", "reason", "who"}
    assert results["after rollback"]["msg"] == "failures=[]"
    # the URLs are secrets: never in the output
    assert "secret-part" not in json.dumps(report) and "XXXX" not in json.dumps(report) and "hunter2" not in str(hooks)


def test_a_dead_or_failing_notifier_warns_and_the_play_goes_on(receiver, tmp_path):
    url, handler = receiver
    handler.status = 500
    dead = f"http://127.0.0.1:{free_port()}/hook/dead-secret"
    tasks = notify("start", dead, f"{url}/slack/failing-secret", extra="    release_notify_timeout: 2\n")
    rc, results, report = run_tasks(tasks, tmp_path)
    assert rc == 0, results
    failures = results["after start"]["msg"]
    assert "webhook: HTTP -1" in failures and "slack: HTTP 500" in failures
    assert "WARNING: the start notification failed for webhook" in results[WARN]["msg"]
    assert "dead-secret" not in json.dumps(report) and "failing-secret" not in json.dumps(report)


def test_sns_publish_reaches_the_topic_and_a_missing_topic_only_warns(emulator, tmp_path):
    from conftest import run_playbook

    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic = sns.create_topic(Name="releases")["TopicArn"]
    queue = sqs.create_queue(QueueName="releases")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sent = notify("success", "", "", extra=f'    release_notify_sns_topic_arn: "{topic}"\n')
    missing = notify("failure", "", "", extra=f'    release_notify_sns_topic_arn: "{topic}-gone"\n')
    rc, results, report = run_playbook(sent + missing, emulator.endpoint, tmp_path)
    assert rc == 0, results
    assert results["after success"]["msg"] == "failures=[]"
    assert "sns: " in results["after failure"]["msg"] and WARN in results
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    bodies = [m["Body"] for m in messages]
    assert len(bodies) == 1 and "success" in bodies[0] and "ABC-1-web-20260101120000" in bodies[0]
