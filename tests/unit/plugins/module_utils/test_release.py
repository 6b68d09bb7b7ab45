"""release.py: version names, the lock's rules (on moto in-process S3, which enforces IfNoneMatch / IfMatch), the
abort mark and history. Interleavings of two takers are forced by a store that runs the rival's call at the worst
moment, so the rules are checked deterministically; the real concurrent runs are in tests/integration."""

import datetime
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ansible_collections.bluegreen.aws.plugins.module_utils.release import AbortWatch
from ansible_collections.bluegreen.aws.plugins.module_utils.release import LockHeld
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ReleaseLock
from ansible_collections.bluegreen.aws.plugins.module_utils.release import Store
from ansible_collections.bluegreen.aws.plugins.module_utils.release import VersionError
from ansible_collections.bluegreen.aws.plugins.module_utils.release import abort_key
from ansible_collections.bluegreen.aws.plugins.module_utils.release import lock_expired
from ansible_collections.bluegreen.aws.plugins.module_utils.release import parse_version
from ansible_collections.bluegreen.aws.plugins.module_utils.release import read_history
from ansible_collections.bluegreen.aws.plugins.module_utils.release import scrub
from ansible_collections.bluegreen.aws.plugins.module_utils.release import version_name
from ansible_collections.bluegreen.aws.plugins.module_utils.release import who_am_i

UTC = datetime.timezone.utc  # noqa: UP017
BUCKET = "release-state"


# -- version names -------------------------------------------------------------------------------------
def test_version_name_is_built_in_utc():
    when = datetime.datetime(2026, 1, 2, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=9)))
    assert version_name("ABC-123", "orders", when) == "ABC-123-orders-20260101190506"
    assert version_name("ABC-123", "order-api", 0) == "ABC-123-order-api-19700101000000"
    assert version_name("ABC-123", "web", "20261231235959") == "ABC-123-web-20261231235959"
    assert parse_version(version_name("OPS_2-7", "web"))["ticket"] == "OPS_2-7"


def test_version_parse_splits_the_parts():
    assert parse_version("ABC-123-order-api-20260101120000") == {
        "name": "ABC-123-order-api-20260101120000",
        "ticket": "ABC-123",
        "module": "order-api",
        "timestamp": "20260101120000",
        "time": "2026-01-01T12:00:00Z",
    }


@pytest.mark.parametrize(
    "name, part",
    [
        ("abc-orders-20260101120000", "has 3 dash-separated parts"),
        ("ABC-x1-orders-20260101120000", "ticket part 'ABC-x1'"),
        ("1ABC-1-orders-20260101120000", "ticket part '1ABC-1'"),
        ("ABC-1-Orders-20260101120000", "module part 'Orders'"),
        ("ABC-1-orders_-20260101120000", "module part 'orders_'"),
        ("ABC-1-orders-2026010112000", "time part '2026010112000' is wrong: it must be 14 digits"),
        ("ABC-1-orders-20261301120000", "time part '20261301120000' is not a real UTC time"),
        ("ABC-1-orders-20260230120000", "time part '20260230120000' is not a real UTC time"),
        ("ABC-1-orders-20260101250000", "is not a real UTC time"),
        ("", "non-empty"),
    ],
)
def test_bad_version_names_name_the_wrong_part(name, part):
    with pytest.raises(VersionError, match=None) as error:
        parse_version(name)
    assert part in str(error.value)


def test_version_name_rejects_bad_parts():
    with pytest.raises(VersionError, match="ticket part 'abc'"):
        version_name("abc", "web")
    with pytest.raises(VersionError, match="module part 'Web App'"):
        version_name("ABC-1", "Web App")
    with pytest.raises(VersionError, match="time 'yesterday'"):
        version_name("ABC-1", "web", "yesterday")


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


class Later(Store):
    """S3's clock ``hours`` later (a lock written now is expired to this store's readers)."""

    def __init__(self, client, hours=2):
        super().__init__(client, BUCKET)
        self.hours = hours

    def get(self, key):
        found = super().get(key)
        if found is None:
            return None
        doc, etag, last_modified, now = found
        return doc, etag, last_modified, now + datetime.timedelta(hours=self.hours)


class Rival(Later):
    """Runs ``rival()`` just before our first conditional write of kind ``when`` (the worst interleaving)."""

    def __init__(self, client, rival, when, hours=0):
        super().__init__(client, hours)
        self.rival, self.when, self.writes = rival, when, []

    def put(self, key, document, **conditions):
        if self.rival and set(conditions) == {self.when}:
            rival, self.rival = self.rival, None
            rival()
        self.writes.append(dict(conditions))
        return super().put(key, document, **conditions)

    def delete(self, key, **conditions):
        if self.rival and set(conditions) == {self.when}:
            rival, self.rival = self.rival, None
            rival()
        return super().delete(key, **conditions)


def locker(store):
    return ReleaseLock(store, "bluegreen", "web", "prod", sleep=lambda s: None)


def new(lock, who, version="ABC-1-web-20260101120000", ttl=3600):
    return lock.new_lock(version, "deploy", ttl, {"who": who})


# -- the lock ------------------------------------------------------------------------------------------
def test_first_taker_wins_second_is_told_who_what_and_since_when(s3):
    a, b = locker(Store(s3, BUCKET)), locker(Store(s3, BUCKET))
    held, taken_over = a.acquire(new(a, "alice@host1"))
    assert taken_over is None
    with pytest.raises(LockHeld) as refused:
        b.acquire(new(b, "bob@host2", "ABC-2-web-20260101120001"))
    message = str(refused.value)
    assert "alice@host1" in message and "ABC-1-web-20260101120000" in message
    assert f"since {held['created']}" in message and held["id"] in message
    assert json.load(s3.get_object(Bucket=BUCKET, Key=a.key)["Body"])["id"] == held["id"]  # untouched


def test_two_takers_interleaved_on_the_free_lock_exactly_one_wins(s3):
    rival = locker(Store(s3, BUCKET))
    rival_lock = new(rival, "rival@host")
    ours = locker(Rival(s3, lambda: rival.acquire(rival_lock), "IfNoneMatch"))
    with pytest.raises(LockHeld, match="rival@host"):
        ours.acquire(new(ours, "us@host"))
    assert ours.read()[0]["id"] == rival_lock["id"]


def test_two_takers_of_one_stale_lock_exactly_one_wins(s3):
    first = locker(Store(s3, BUCKET))
    first.acquire(new(first, "crashed@ci", ttl=60))
    rival = locker(Later(s3))
    rival_lock = new(rival, "rival@host", ttl=86400)  # live for our skewed clock too
    results = {}

    def rival_takes_over():
        results["rival"] = rival.acquire(rival_lock)

    ours = locker(Rival(s3, rival_takes_over, "IfMatch", hours=2))
    with pytest.raises(LockHeld, match="rival@host"):
        ours.acquire(new(ours, "us@host"))
    assert results["rival"][1]["who"] == "crashed@ci"  # the rival's takeover is reported
    assert ours.read()[0]["id"] == rival_lock["id"]


def test_a_live_lock_is_never_taken_over_and_a_stale_one_is_reported(s3):
    first = locker(Store(s3, BUCKET))
    old, unused = first.acquire(new(first, "crashed@ci", ttl=60))
    with pytest.raises(LockHeld):
        locker(Later(s3, hours=0)).acquire(new(first, "early@host"))
    later = locker(Later(s3))
    assert later.plan() == ("takeover", later.read()[0])
    lock, taken_over = later.acquire(new(later, "late@host"))
    assert taken_over["id"] == old["id"] and later.read()[0]["id"] == lock["id"]


def test_a_lock_without_ttl_never_expires():
    written = datetime.datetime(2020, 1, 1, tzinfo=UTC)
    assert not lock_expired({"ttl": 0}, written, written + datetime.timedelta(days=999))
    assert not lock_expired({"ttl": 60}, written, written + datetime.timedelta(seconds=59))
    assert lock_expired({"ttl": 60}, written, written + datetime.timedelta(seconds=60))


def test_conflict_409_is_retried_and_a_lost_answer_is_recognised(s3):
    calls = []

    class Conflicting(Store):
        def put(self, key, document, **conditions):
            calls.append(conditions)
            if len(calls) == 1:
                raise ClientError({"Error": {"Code": "ConditionalRequestConflict"}}, "PutObject")
            if len(calls) == 2:  # the write lands but its answer is lost; the retry sees 412 on our own lock
                super().put(key, document, **conditions)
                raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
            return super().put(key, document, **conditions)

    lock = locker(Conflicting(s3, BUCKET))
    mine = new(lock, "us@host")
    assert lock.acquire(mine) == (mine, None)
    assert calls == [{"IfNoneMatch": "*"}, {"IfNoneMatch": "*"}]


def test_other_errors_are_not_swallowed(s3):
    with pytest.raises(ClientError, match="NoSuchBucket"):
        ReleaseLock(Store(s3, "no-such-bucket"), "bluegreen", "web", "prod").acquire({"id": "x"})


def test_release_only_by_the_holder_force_needs_a_record(s3):
    a = locker(Store(s3, BUCKET))
    held, unused = a.acquire(new(a, "alice@host"))
    with pytest.raises(LockHeld, match="lock id nope does not hold it; alice@host"):
        a.release("nope")
    assert a.read()[0]["id"] == held["id"]
    removed, record = a.release(None, force=True, reason="killed", who={"who": "ops@laptop"}, check=True)
    assert removed["id"] == held["id"] and record["reason"] == "killed" and a.read() is not None  # check: no write
    removed, record = a.release(None, force=True, reason="killed", who={"who": "ops@laptop"})
    assert a.read() is None
    stored = json.load(s3.get_object(Bucket=BUCKET, Key=record["key"])["Body"])
    assert stored["who"] == "ops@laptop" and stored["lock"]["who"] == "alice@host"
    assert a.release("anything") == (None, None)


def test_release_refused_when_the_lock_changed_under_us(s3):
    a = locker(Store(s3, BUCKET))
    held, unused = a.acquire(new(a, "alice@host", ttl=60))
    thief = locker(Later(s3))

    ours = locker(Rival(s3, lambda: thief.acquire(new(thief, "thief@host")), "IfMatch"))
    with pytest.raises(LockHeld, match="changed while releasing it; thief@host"):
        ours.release(held["id"])
    assert ours.read()[0]["who"] == "thief@host"


def test_who_names_the_awx_job():
    who = who_am_i({"AWX_JOB_ID": "4711", "AWX_HOST": "https://awx.example.com/"})
    assert "@" in who["who"] and who["awx_job_id"] == "4711"
    assert who["awx_job_url"] == "https://awx.example.com/#/jobs/playbook/4711"
    assert who_am_i({"tower_job_id": "12"})["awx_job_id"] == "12"
    assert "awx_job_id" not in who_am_i({})


# -- the abort mark ------------------------------------------------------------------------------------
def mark(s3, **fields):
    s3.put_object(Bucket=BUCKET, Key=abort_key("bluegreen", "web", "prod"), Body=json.dumps(fields).encode())


def test_abort_mark_applies_to_its_release_only(s3):
    watch = AbortWatch(Store(s3, BUCKET), abort_key("bluegreen", "web", "prod"), lock_id="L2", version="v2")
    assert watch() is None  # no mark
    mark(s3, lock_id="L1", version="v1", who="ops@laptop", reason="old", at="2026-01-01T00:00:00Z")
    assert watch() is None  # a stale mark for the last release
    mark(s3, lock_id="L2", version="v2", who="ops@laptop", reason="5xx", at="2026-01-01T00:00:00Z")
    assert watch() == "aborted by ops@laptop at 2026-01-01T00:00:00Z: 5xx"
    assert watch.report()["checks"] == 3 and watch.report()["mark"]["lock_id"] == "L2"


def test_abort_mark_without_identity_counts_only_when_newer_than_the_run(s3):
    mark(s3, who="ops@laptop", reason="x")
    key = abort_key("bluegreen", "web", "prod")
    assert AbortWatch(Store(s3, BUCKET), key, clock=lambda: 4102444800.0)() is None  # run started in 2100
    assert AbortWatch(Store(s3, BUCKET), key, clock=lambda: 0.0)() == "aborted by ops@laptop at unknown: x"


def test_an_unreadable_mark_warns_then_aborts_after_max_errors(s3):
    watch = AbortWatch(Store(s3, "no-such-bucket"), "k", version="v", max_errors=3)
    assert watch() is None and watch() is None
    reason = watch()
    assert "could not be read 3 time(s) in a row" in reason and "NoSuchBucket" in reason
    assert watch.report()["errors"] == 3
    # a good read resets the count
    flaky = AbortWatch(Store(s3, "no-such-bucket"), "k", version="v", max_errors=2)
    assert flaky() is None
    flaky.store = Store(s3, BUCKET)
    assert flaky() is None
    flaky.store = Store(s3, "no-such-bucket")
    assert flaky() is None and flaky.errors == 2
    assert AbortWatch(Store(s3, "no-such-bucket"), "k", on_error="abort")() is not None


# -- history -------------------------------------------------------------------------------------------
def test_history_newest_first_and_last_good(s3):
    store = Store(s3, BUCKET)
    prefix = "bluegreen/web/prod/history/"
    for stamp, result in (
        ("20260101", "success"),
        ("20260102", "success"),
        ("20260103", "failure"),
        ("20260104", "rolled_back"),
    ):
        store.put(f"{prefix}{stamp}120000-v{stamp}.json", {"version": f"v{stamp}", "result": result})
    releases, last_good = read_history(store, "bluegreen", "web", "prod", last=2)
    assert [r["version"] for r in releases] == ["v20260104", "v20260103"]
    assert last_good["version"] == "v20260102" and last_good["key"].endswith("20260102120000-v20260102.json")
    releases, unused = read_history(store, "bluegreen", "web", "prod", last=5, result="success")
    assert [r["version"] for r in releases] == ["v20260102", "v20260101"]
    assert read_history(store, "bluegreen", "web", "stage") == ([], None)


def test_scrub_redacts_secret_looking_keys():
    assert scrub({"image": "x", "Password": "p", "nested": [{"slack_webhook_url": "u", "ok": 1}], "API-Key": "k"}) == {
        "image": "x",
        "Password": "REDACTED",
        "nested": [{"slack_webhook_url": "REDACTED", "ok": 1}],
        "API-Key": "REDACTED",
    }
