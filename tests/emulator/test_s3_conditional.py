"""S3 conditional writes are atomic, as on AWS: of concurrent writers with the same condition, exactly one wins.

moto 5.2.5 checks If-None-Match / If-Match and then writes, as two steps, so two concurrent requests can both pass
the check. The release lock (``release_lock``) relies on AWS's guarantee; ``bgemu.s3cond`` gives it. The race
window is a few microseconds, so these tests run moto in-process and widen it (a read that takes 20 ms): without
``s3cond`` several writers win every round.
"""

import threading
import time

import boto3
import pytest
from bgemu import s3cond
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.s3.models import S3Backend

WRITERS = 6
REGION = "eu-west-1"


@pytest.fixture
def s3(monkeypatch):
    for owner, name, function in s3cond.PATCHES:
        monkeypatch.setattr(owner, name, function)
    read = S3Backend.get_object

    def slow_read(self, *args, **kwargs):
        found = read(self, *args, **kwargs)
        time.sleep(0.02)  # the window between moto's check and its write, widened
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_read)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="locks", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def race(action):
    barrier = threading.Barrier(WRITERS)
    outcomes = [None] * WRITERS

    def writer(i):
        barrier.wait()
        try:
            action(i)
            outcomes[i] = "won"
        except ClientError as e:
            outcomes[i] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def test_if_none_match_star_lets_exactly_one_concurrent_creator_win(s3):
    for n in range(3):
        key = f"lock-{n}"
        outcomes = race(lambda i, key=key: s3.put_object(Bucket="locks", Key=key, Body=f"writer {i}", IfNoneMatch="*"))
        assert outcomes.count("won") == 1, f"round {n}: {outcomes}"
        assert set(outcomes) == {"won", "PreconditionFailed"}, outcomes
        assert s3.get_object(Bucket="locks", Key=key)["Body"].read().decode() == f"writer {outcomes.index('won')}"


def test_if_match_lets_exactly_one_concurrent_replacer_of_an_etag_win(s3):
    for n in range(3):
        key = f"stale-{n}"
        etag = s3.put_object(Bucket="locks", Key=key, Body="stale")["ETag"]
        outcomes = race(
            lambda i, key=key, etag=etag: s3.put_object(Bucket="locks", Key=key, Body=f"taker {i}", IfMatch=etag)
        )
        assert outcomes.count("won") == 1, f"round {n}: {outcomes}"
        assert s3.get_object(Bucket="locks", Key=key)["Body"].read().decode() == f"taker {outcomes.index('won')}"


def test_a_release_by_etag_and_a_takeover_of_that_etag_cannot_both_win(s3):
    etag = s3.put_object(Bucket="locks", Key="held", Body="holder")["ETag"]
    actions = [
        lambda: s3.delete_object(Bucket="locks", Key="held", IfMatch=etag),
        lambda: s3.put_object(Bucket="locks", Key="held", Body="taker", IfMatch=etag),
    ]
    outcomes = race(lambda i: actions[i % 2]())
    assert outcomes.count("won") == 1, outcomes
