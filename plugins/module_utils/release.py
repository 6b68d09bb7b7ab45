# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The release pipeline's building blocks: version names, the deploy lock, the abort mark, history records.

Everything that must be shared between processes lives in S3 under ``<prefix>/<application>/<environment>/``:

- ``lock.json``: the deploy lock. Taken with ``PutObject IfNoneMatch='*'`` (S3 answers 412 PreconditionFailed when
  the key exists, so of two takers exactly one wins), released with ``DeleteObject IfMatch=<ETag>`` by its holder
  only, and an expired lock is taken over with ``PutObject IfMatch=<stale ETag>`` so two takers of one stale lock
  cannot both win. Expiry is judged on S3's clock (the lock's ``LastModified`` and the ``Date`` of the read), so a
  taker with a wrong clock cannot steal a live lock.
- ``abort.json``: an operator's abort mark for the running release (named by its lock id and version, so a stale
  mark never aborts the next release).
- ``history/<release_id>.json``: one JSON record per release; ``release_id`` starts with the UTC start time so the
  keys sort in time order.
- ``unlocks/<time>-<lock id>.json``: a record of each forced unlock (who, why, the lock that was removed).

Plain Python on a boto3 S3 client (pass one made with AWSRetry); no Ansible imports, unit-testable on moto.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import socket
import time
import uuid

from ansible_collections.amazon.aws.plugins.module_utils.botocore import HAS_BOTO3
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

UTC = datetime.timezone.utc  # noqa: UP017 (modules may run on Python < 3.11)
TIME_FORMAT = "%Y%m%d%H%M%S"

# -- version names -------------------------------------------------------------------------------------
TICKET_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$")
MODULE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
STAMP_RE = re.compile(r"^[0-9]{14}$")
MAX_VERSION_LENGTH = 128  # a container image tag is at most 128 characters


class VersionError(ValueError):
    """A version name that does not follow ``[ticket]-[module]-[yyyyMMddHHmmss]``; the message names the part."""


def _check_ticket(ticket):
    if not isinstance(ticket, str) or not TICKET_RE.match(ticket):
        raise VersionError(
            f"ticket part {ticket!r} is wrong: it must be an issue key like ABC-123 "
            "(letters, digits or _ starting with a letter, a dash, then the issue number)"
        )


def _check_module(module):
    if not isinstance(module, str) or not MODULE_RE.match(module):
        raise VersionError(
            f"module part {module!r} is wrong: it must be lower-case letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )


def _parse_stamp(stamp):
    if not isinstance(stamp, str) or not STAMP_RE.match(stamp):
        raise VersionError(f"time part {stamp!r} is wrong: it must be 14 digits, yyyyMMddHHmmss in UTC")
    try:
        return datetime.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as e:
        raise VersionError(f"time part {stamp!r} is not a real UTC time yyyyMMddHHmmss ({e})") from None


def to_utc(when=None):
    """``when`` as an aware UTC datetime: None (now), a datetime (naive means UTC), epoch seconds, or ISO 8601."""
    if when is None:
        return datetime.datetime.now(UTC)
    if isinstance(when, datetime.datetime):
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return datetime.datetime.fromtimestamp(when, UTC)
    if isinstance(when, str):
        if STAMP_RE.match(when):
            return _parse_stamp(when)
        try:
            parsed = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise VersionError(f"time {when!r} is not epoch seconds, ISO 8601 or yyyyMMddHHmmss") from None
        return to_utc(parsed)
    raise VersionError(f"time {when!r} is not epoch seconds, ISO 8601, yyyyMMddHHmmss or a datetime")


def version_name(ticket, module, when=None):
    """Build ``[ticket]-[module]-[yyyyMMddHHmmss]`` (UTC); the parts are validated."""
    _check_ticket(ticket)
    _check_module(module)
    name = f"{ticket}-{module}-{to_utc(when).strftime(TIME_FORMAT)}"
    if len(name) > MAX_VERSION_LENGTH:
        raise VersionError(f"version name {name!r} is {len(name)} characters, more than {MAX_VERSION_LENGTH}")
    return name


def parse_version(name):
    """Split and validate a version name; returns ticket, module, timestamp (yyyyMMddHHmmss) and ISO time."""
    if not isinstance(name, str) or not name:
        raise VersionError(f"version name {name!r} must be a non-empty string [ticket]-[module]-[yyyyMMddHHmmss]")
    if len(name) > MAX_VERSION_LENGTH:
        raise VersionError(f"version name is {len(name)} characters, more than {MAX_VERSION_LENGTH}")
    parts = name.split("-")
    if len(parts) < 4:
        raise VersionError(
            f"version name {name!r} has {len(parts)} dash-separated parts; expected "
            "[ticket]-[module]-[yyyyMMddHHmmss] such as ABC-123-orders-20260101120000"
        )
    stamp = parts[-1]
    ticket = "-".join(parts[:2])
    module = "-".join(parts[2:-1])
    _check_ticket(ticket)
    _check_module(module)
    when = _parse_stamp(stamp)
    return {"name": name, "ticket": ticket, "module": module, "timestamp": stamp, "time": iso(when)}


# -- helpers -------------------------------------------------------------------------------------------
# Where the release modules keep their state (doc fragment bluegreen.aws.release).
STATE_ARGS = dict(
    bucket=dict(type="str", required=True),
    prefix=dict(type="str", default="bluegreen"),
    application=dict(type="str", required=True),
    environment=dict(type="str", required=True),
)


def iso(when):
    return to_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def who_am_i(environ=None, override=None):
    """``user@host`` (or ``override``), and the AWX / Automation Platform job when the run is one (its id, and URL
    when known)."""
    env = os.environ if environ is None else environ
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 (no user name in a bare container)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    who = {"who": override or f"{user}@{socket.gethostname()}"}
    job_id = env.get("AWX_JOB_ID") or env.get("tower_job_id") or env.get("TOWER_JOB_ID") or env.get("JOB_ID")
    if job_id:
        who["awx_job_id"] = str(job_id)
        host = env.get("AWX_HOST") or env.get("TOWER_HOST")
        if host:
            who["awx_job_url"] = f"{host.rstrip('/')}/#/jobs/playbook/{job_id}"
    return who


def base_key(prefix, application, environment):
    for name, value in (("application", application), ("environment", environment)):
        if not value or "/" in value:
            raise ReleaseError(f"{name} {value!r} must be a non-empty name without '/'")
    prefix = (prefix or "").strip("/")
    return f"{prefix}/{application}/{environment}" if prefix else f"{application}/{environment}"


SECRET_KEY_RE = re.compile(r"(password|passwd|secret|token|credential|authorization|api[_-]?key|webhook|private)", re.I)
REDACTED = "REDACTED"


def scrub(value):
    """A copy of ``value`` with the values of secret-looking keys (password, token, webhook, ...) redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY_RE.search(str(k)) else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


class ReleaseError(Exception):
    """A refused or failed release operation; the message says what and what to do."""


class LockHeld(ReleaseError):
    def __init__(self, message, holder):
        super().__init__(message)
        self.holder = holder


# S3's answers to conditional requests: 412 when the condition does not hold, 409 when another conditional request
# on the key was in flight (retry), 404 NoSuchKey for IfMatch on a key that is gone.
PRECONDITION_FAILED = ("PreconditionFailed", "412")
CONFLICT = ("ConditionalRequestConflict", "409")
MISSING = ("NoSuchKey", "404", "NotFound")
LOST_RACE = PRECONDITION_FAILED + CONFLICT


# -- S3 ------------------------------------------------------------------------------------------------
class Store:
    """JSON objects in one bucket. ``client`` is a boto3 S3 client; ``call_kwargs`` (e.g. aws_retry=True) go to
    every call."""

    def __init__(self, client, bucket, call_kwargs=None):
        self.client = client
        self.bucket = bucket
        self.kw = dict(call_kwargs or {})

    def get(self, key):
        """``(document, etag, last_modified, server_now)``, or None when there is no such key."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, **self.kw)
        except is_boto3_error_code(MISSING):
            return None
        raw = response["Body"].read()
        try:
            document = json.loads(raw)
        except ValueError:
            document = {"unreadable": raw[:200].decode("utf-8", "replace")}
        if not isinstance(document, dict):
            document = {"unreadable": str(document)[:200]}
        return document, response.get("ETag"), response.get("LastModified"), server_time(response)

    def put(self, key, document, **conditions):
        body = json.dumps(document, sort_keys=True, indent=1).encode()
        response = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **conditions, **self.kw
        )
        return response.get("ETag")

    def delete(self, key, **conditions):
        self.client.delete_object(Bucket=self.bucket, Key=key, **conditions, **self.kw)

    def keys(self, prefix):
        keys = []
        token = None
        while True:
            kwargs = dict(Bucket=self.bucket, Prefix=prefix)
            if token:
                kwargs["ContinuationToken"] = token
            response = self.client.list_objects_v2(**kwargs, **self.kw)
            keys.extend(item["Key"] for item in response.get("Contents", []))
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return sorted(keys)


def server_time(response):
    """S3's clock: the ``Date`` header of a response, or the local clock when it has none."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if header:
        try:
            from email.utils import parsedate_to_datetime

            return to_utc(parsedate_to_datetime(header))
        except (TypeError, ValueError):
            pass
    return datetime.datetime.now(UTC)


# -- the lock ------------------------------------------------------------------------------------------
def describe_holder(lock):
    job = f", AWX job {lock['awx_job_id']}" if lock.get("awx_job_id") else ""
    url = f" ({lock['awx_job_url']})" if lock.get("awx_job_url") else ""
    return (
        f"{lock.get('who', 'unknown')}{job}{url} holds it for {lock.get('operation', 'deploy')} of version "
        f"{lock.get('version') or 'unknown'} since {lock.get('created', 'unknown')} "
        f"(lock id {lock.get('id', 'unknown')}, expires {lock.get('expires', 'never')})"
    )


def lock_expired(lock, last_modified, now):
    """Judged on S3's clock: the lock's LastModified plus its ttl, against the Date of the read."""
    ttl = lock.get("ttl")
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
        return False  # a lock without a ttl never expires: only its holder or a forced unlock removes it
    written = to_utc(last_modified) if last_modified else to_utc(lock.get("created"))
    return now >= written + datetime.timedelta(seconds=ttl)


class ReleaseLock:
    """One lock per application + environment; see the module docstring."""

    ATTEMPTS = 5  # rounds of take/read when the lock vanishes or S3 reports a conflicting request (409)

    def __init__(self, store, prefix, application, environment, sleep=time.sleep):
        self.store = store
        self.application = application
        self.environment = environment
        self.key = base_key(prefix, application, environment) + "/lock.json"
        self.unlocks = base_key(prefix, application, environment) + "/unlocks/"
        self.sleep = sleep

    def read(self):
        """``(lock, etag, expired)`` or None."""
        found = self.store.get(self.key)
        if found is None:
            return None
        lock, etag, last_modified, now = found
        return lock, etag, lock_expired(lock, last_modified, now)

    def new_lock(self, version, operation, ttl, who, now=None):
        created = to_utc(now)
        lock = dict(
            id=str(uuid.uuid4()),
            application=self.application,
            environment=self.environment,
            version=version,
            operation=operation,
            created=iso(created),
            ttl=ttl,
            expires=iso(created + datetime.timedelta(seconds=ttl)) if ttl else None,
        )
        lock.update(who)
        return lock

    def plan(self, lock_id=None):
        """What :meth:`acquire` would do, without writing: ``acquire``, ``held_by_us``, ``takeover`` or ``refused``."""
        current = self.read()
        if current is None:
            return "acquire", None
        lock, unused_etag, expired = current
        if lock_id and lock.get("id") == lock_id:
            return "held_by_us", lock
        return ("takeover" if expired else "refused"), lock

    def acquire(self, lock):
        """Take the lock; returns ``(lock, taken_over)`` where taken_over is the expired lock replaced, or None.

        Raises LockHeld naming the holder when someone else holds a live lock (nothing else is written).
        """
        for attempt in range(self.ATTEMPTS):
            try:
                self.store.put(self.key, lock, IfNoneMatch="*")
                return lock, None
            except is_boto3_error_code(LOST_RACE):
                pass
            current = self.read()
            if current is None:  # released between our write and our read: try again
                continue
            held, etag, expired = current
            if held.get("id") == lock["id"]:  # our own write, retried after a lost answer
                return held, None
            if not expired:
                raise LockHeld(
                    f"the deploy lock of {self.application}/{self.environment} is taken: " f"{describe_holder(held)}",
                    held,
                )
            try:
                self.store.put(self.key, lock, IfMatch=etag)
                return lock, held
            except is_boto3_error_code(LOST_RACE + MISSING):
                pass
            # another taker replaced (or removed) the stale lock first: read again and report who won
            self.sleep(0.05 * (attempt + 1))
        current = self.read()
        if current is not None:
            raise LockHeld(
                f"the deploy lock of {self.application}/{self.environment} is taken: {describe_holder(current[0])}",
                current[0],
            )
        raise ReleaseError(
            f"could not take the deploy lock of {self.application}/{self.environment} after {self.ATTEMPTS} attempts: "
            "it kept changing under us; run again"
        )

    def release(self, lock_id, force=False, reason=None, who=None, check=False, now=None):
        """Remove the lock held by ``lock_id`` (or any lock with ``force``); returns ``(removed lock or None,
        unlock record or None)``. Refuses a wrong lock id, naming the holder."""
        current = self.read()
        if current is None:
            return None, None
        lock, etag, expired = current
        if not force and lock.get("id") != lock_id:
            raise LockHeld(
                f"refusing to release the deploy lock of {self.application}/{self.environment}: lock id {lock_id} "
                f"does not hold it; {describe_holder(lock)}. Use force (playbooks/unlock.yml) with a reason to "
                "remove someone else's lock",
                lock,
            )
        record = None
        if force and lock.get("id") != lock_id:
            record = dict(
                event="forced_unlock",
                reason=reason,
                at=iso(now),
                lock=lock,
                lock_was_expired=expired,
                **(who or {}),
            )
        if check:
            return lock, record
        if record is not None:
            stamp = to_utc(now).strftime(TIME_FORMAT)
            record["key"] = f"{self.unlocks}{stamp}-{lock.get('id', 'unknown')}.json"
            self.store.put(record["key"], record)
        try:
            self.store.delete(self.key, IfMatch=etag)
        except is_boto3_error_code(MISSING):
            return lock, record
        except is_boto3_error_code(LOST_RACE):
            now_held = self.read()
            holder = describe_holder(now_held[0]) if now_held else "nobody holds it now"
            raise LockHeld(
                f"the deploy lock of {self.application}/{self.environment} changed while releasing it; {holder}",
                now_held[0] if now_held else {},
            ) from None
        return lock, record


# -- the abort mark ------------------------------------------------------------------------------------
def abort_key(prefix, application, environment):
    return base_key(prefix, application, environment) + "/abort.json"


def describe_abort(mark):
    return (
        f"aborted by {mark.get('who', 'unknown')} at {mark.get('at', 'unknown')}: "
        f"{mark.get('reason') or 'no reason given'}"
    )


def abort_applies(mark, lock_id=None, version=None, started=None, written=None):
    """Does an abort mark stop *this* release?

    It does when it names this release's lock id, or its version; a mark naming neither (or a release that gave
    neither) counts only when it was written after the release started, so a stale mark never aborts the next one.
    """
    if lock_id and mark.get("lock_id"):
        return mark["lock_id"] == lock_id
    if version and mark.get("version"):
        return mark["version"] == version
    if started is not None and written is not None:
        return to_utc(written) >= to_utc(started)
    return False


class AbortWatch:
    """The ``abort()`` callable the rollout engine asks before each step and gate evaluation.

    One GetObject per call. A missing mark (or one for another release) means not aborted. A failed read is counted
    and reported as not aborted (the gates still guard the canary's health, and an S3 hiccup must not roll back a
    healthy release), but after ``max_errors`` failed reads in a row the run aborts: an operator can no longer stop
    it, so it must not keep moving traffic. ``on_error="abort"`` aborts on the first failed read.
    """

    def __init__(self, store, key, lock_id=None, version=None, max_errors=3, on_error="warn", clock=time.time):
        self.store = store
        self.key = key
        self.lock_id = lock_id
        self.version = version
        self.max_errors = max_errors
        self.on_error = on_error
        self.clock = clock
        self.started = to_utc(clock()) - datetime.timedelta(seconds=1)  # LastModified has 1 s resolution
        self.checks = 0
        self.errors = 0
        self.in_a_row = 0
        self.last_error = None
        self.mark = None

    def __call__(self):
        self.checks += 1
        try:
            found = self.store.get(self.key)
        except Exception as e:  # noqa: BLE001 (any failure to read is handled the same way, below)
            self.errors += 1
            self.in_a_row += 1
            self.last_error = f"{type(e).__name__}: {e}"
            if self.on_error == "abort" or self.in_a_row >= self.max_errors:
                return (
                    f"the abort mark s3://{self.store.bucket}/{self.key} could not be read {self.in_a_row} time(s) "
                    f"in a row ({self.last_error}); stopping because an operator's abort could no longer be seen"
                )
            return None
        self.in_a_row = 0
        if found is None:
            return None
        mark, unused_etag, written, unused_now = found
        if not abort_applies(mark, self.lock_id, self.version, self.started, written):
            return None
        self.mark = mark
        return describe_abort(mark)

    def report(self):
        return dict(
            bucket=self.store.bucket,
            key=self.key,
            checks=self.checks,
            errors=self.errors,
            last_error=self.last_error,
            mark=self.mark,
        )


# The abort option of traffic_switch and codedeploy_deployment (doc fragment bluegreen.aws.release.abort).
ABORT_OPTIONS = dict(
    bucket=dict(type="str", required=True),
    key=dict(type="str", no_log=False),
    prefix=dict(type="str", default="bluegreen"),
    application=dict(type="str"),
    environment=dict(type="str"),
    lock_id=dict(type="str"),
    version=dict(type="str"),
    max_errors=dict(type="int", default=3),
    on_error=dict(type="str", choices=["warn", "abort"], default="warn"),
)


def abort_watch(module):
    """The ``abort()`` callable for a module's ``abort`` option (None without it): one GetObject of the mark per
    call, on a client that fails fast (an abort read must not stall a gate interval: one quick retry, short
    timeouts). Bad options fail the module before any AWS call."""
    options = module.params["abort"]
    if not options:
        return None
    if not HAS_BOTO3:
        module.fail_json(msg="abort needs the boto3 and botocore Python packages on the module's host")
    key = options["key"]
    if not key:
        if not (options["application"] and options["environment"]):
            module.fail_json(msg="abort needs abort.key, or abort.application and abort.environment")
        try:
            key = abort_key(options["prefix"], options["application"], options["environment"])
        except ReleaseError as e:
            module.fail_json(msg=f"abort: {e}")
    if options["max_errors"] < 1:
        module.fail_json(msg=f"abort.max_errors must be at least 1, got {options['max_errors']}")
    client = module.client(
        "s3",
        retry_decorator=AWSRetry.jittered_backoff(retries=2, delay=0.2, max_delay=1),
        config=dict(connect_timeout=2, read_timeout=5, retries=dict(max_attempts=1)),
    )
    return AbortWatch(
        Store(client, options["bucket"], call_kwargs=dict(aws_retry=True)),
        key,
        lock_id=options["lock_id"],
        version=options["version"],
        max_errors=options["max_errors"],
        on_error=options["on_error"],
    )


def abort_result(module, watcher):
    """The ``aborted`` / ``abort_check`` results of a module with the ``abort`` option; warns about failed reads."""
    if watcher is None:
        return {}
    report = watcher.report()
    if report["errors"]:
        module.warn(
            f"the abort mark s3://{report['bucket']}/{report['key']} could not be read {report['errors']} of "
            f"{report['checks']} times (last: {report['last_error']}); those reads counted as not aborted"
        )
    return dict(aborted=report["mark"] is not None, abort_check=report)


# -- history -------------------------------------------------------------------------------------------
RESULTS = ("in_progress", "success", "failure", "rolled_back", "aborted")


def history_prefix(prefix, application, environment):
    return base_key(prefix, application, environment) + "/history/"


def release_id_for(started, version):
    return f"{to_utc(started).strftime(TIME_FORMAT)}-{version}"


def read_history(store, prefix, application, environment, last=10, result=None):
    """Newest first: up to ``last`` records (of ``result`` when given), and the newest successful one."""
    keys = store.keys(history_prefix(prefix, application, environment))
    releases, last_good = [], None
    for key in reversed(keys):
        found = store.get(key)
        if found is None:
            continue
        record = dict(found[0], key=key)
        if last_good is None and record.get("result") == "success":
            last_good = record
        if (result is None or record.get("result") == result) and len(releases) < last:
            releases.append(record)
        if last_good is not None and len(releases) >= last:
            break
    return releases, last_good
