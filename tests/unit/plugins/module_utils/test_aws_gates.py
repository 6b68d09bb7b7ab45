"""Target health gate with botocore's Stubber: moto reports every target healthy, AWS does not."""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from botocore.stub import Stubber

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import FAIL
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PASS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PENDING
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import TargetHealthGate

TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/0123456789abcdef"


@pytest.fixture
def elb():
    client = boto3.client("elbv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.activate()
    yield RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff(retries=3, delay=0)), stubber
    stubber.assert_no_pending_responses()


def health(stubber, *states):
    stubber.add_response(
        "describe_target_health",
        {
            "TargetHealthDescriptions": [
                {"Target": {"Id": f"i-{n:017x}", "Port": 80}, "TargetHealth": {"State": state}}
                for n, state in enumerate(states)
            ]
        },
        {"TargetGroupArn": TG},
    )


def test_initial_targets_are_pending_then_pass_when_healthy(elb):
    client, stubber = elb
    gate = TargetHealthGate(client, TG, min_healthy=2)
    health(stubber, "initial", "initial")
    result = gate.evaluate()
    assert result.verdict == PENDING and result.details["states"] == {"initial": 2}
    health(stubber, "healthy", "healthy", "draining")
    result = gate.evaluate()
    assert result.verdict == PENDING  # 2 healthy, but 67% < the default 100%
    assert result.details["healthy"] == 2 and result.details["total"] == 3
    health(stubber, "healthy", "healthy")
    assert gate.evaluate().verdict == PASS


def test_percentage_and_consecutive_failures(elb):
    client, stubber = elb
    gate = TargetHealthGate(client, TG, min_healthy=1, min_healthy_percent=50, failure_threshold=2)
    health(stubber, "healthy", "unhealthy")
    assert gate.evaluate().verdict == PASS
    health(stubber, "healthy", "unhealthy", "unhealthy")
    assert gate.evaluate().verdict == PENDING
    health(stubber, "unhealthy", "unhealthy", "unavailable")
    result = gate.evaluate()
    assert result.verdict == FAIL
    assert result.details["states"] == {"unhealthy": 2, "unavailable": 1}
    assert "0/3 targets healthy" in result.reason


def test_empty_group_never_passes(elb):
    client, stubber = elb
    gate = TargetHealthGate(client, TG, min_healthy=0, min_healthy_percent=0, failure_threshold=1)
    health(stubber)
    assert gate.evaluate().verdict == FAIL


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError):
        TargetHealthGate(None, TG, min_healthy_percent=120)
