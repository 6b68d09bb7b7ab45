"""codedeploy.py against botocore's Stubber: AWS answers the emulator does not produce (Baking, throttling, a lost
CreateDeployment answer).  Every request and response is checked against the real API model."""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ansible_collections.bluegreen.aws.plugins.module_utils import codedeploy
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import ActiveDeployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import DeploymentError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import Tracker
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import same_revision

APP, GROUP, DEPLOYMENT = "web", "web-prod", "d-ABCDEFGH1"
REVISION = {"bucket": "releases", "key": "web-1.2.3.zip", "bundle_type": "zip", "version": None, "etag": "abc"}
S3 = {"bucket": "releases", "key": "web-1.2.3.zip", "bundleType": "zip", "eTag": "abc"}


def stubbed(backoff):
    client = boto3.client("codedeploy", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.activate()
    return RetryingBotoClientWrapper(client, backoff), stubber


@pytest.fixture
def cd():
    client, stubber = stubbed(codedeploy.retry(retries=4, delay=0, max_delay=0))
    yield client, stubber
    stubber.assert_no_pending_responses()


def create_params():
    return {
        "applicationName": APP,
        "deploymentGroupName": GROUP,
        "revision": {"revisionType": "S3", "s3Location": S3},
        "description": "",
    }


def test_throttling_during_create_is_retried(cd):
    client, stubber = cd
    for _attempt in range(2):
        stubber.add_client_error("create_deployment", "ThrottlingException", "Rate exceeded", 400, create_params())
    stubber.add_response("create_deployment", {"deploymentId": DEPLOYMENT}, create_params())
    assert codedeploy.create_deployment(client, APP, GROUP, REVISION, None) == DEPLOYMENT


def test_aws_retry_alone_does_not_retry_codedeploy_throttling():
    client, stubber = stubbed(AWSRetry.jittered_backoff(retries=4, delay=0, max_delay=0))
    stubber.add_client_error("create_deployment", "ThrottlingException", "Rate exceeded", 400, create_params())
    with pytest.raises(ClientError, match="ThrottlingException"):
        codedeploy.create_deployment(client, APP, GROUP, REVISION, None)


def active(stubber, deployment_id, s3):
    stubber.add_response(
        "list_deployments",
        {"deployments": [deployment_id]},
        {
            "applicationName": APP,
            "deploymentGroupName": GROUP,
            "includeOnlyStatuses": codedeploy.ACTIVE_STATUSES,
        },
    )
    stubber.add_response(
        "batch_get_deployments",
        {
            "deploymentsInfo": [
                {
                    "deploymentId": deployment_id,
                    "status": "InProgress",
                    "revision": {"revisionType": "S3", "s3Location": s3},
                }
            ]
        },
        {"deploymentIds": [deployment_id]},
    )


def test_a_create_whose_answer_was_lost_returns_the_deployment_it_made(cd):
    client, stubber = cd
    stubber.add_client_error("create_deployment", "InternalFailure", "", 500, create_params())
    stubber.add_client_error(
        "create_deployment",
        "DeploymentLimitExceededException",
        f"The Deployment Group '{GROUP}' already has an active Deployment '{DEPLOYMENT}'",
        400,
        create_params(),
    )
    active(stubber, DEPLOYMENT, S3)
    assert codedeploy.create_deployment(client, APP, GROUP, REVISION, None) == DEPLOYMENT


def test_an_active_deployment_of_another_revision_is_not_taken_for_ours(cd):
    client, stubber = cd
    stubber.add_client_error(
        "create_deployment", "DeploymentLimitExceededException", "already has an active Deployment", 400
    )
    active(stubber, "d-OTHER0001", dict(S3, key="web-1.2.2.zip"))
    with pytest.raises(ActiveDeployment) as raised:
        codedeploy.create_deployment(client, APP, GROUP, REVISION, None)
    assert raised.value.deployment_id == "d-OTHER0001"


def test_a_limit_error_with_no_active_deployment_left_is_raised_as_is(cd):
    client, stubber = cd
    stubber.add_client_error(
        "create_deployment", "DeploymentLimitExceededException", "already has an active Deployment", 400
    )
    stubber.add_response(
        "list_deployments",
        {"deployments": []},
        {"applicationName": APP, "deploymentGroupName": GROUP, "includeOnlyStatuses": codedeploy.ACTIVE_STATUSES},
    )
    with pytest.raises(ClientError, match="DeploymentLimitExceeded"):
        codedeploy.create_deployment(client, APP, GROUP, REVISION, None)


def get(stubber, status, **info):
    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": dict({"deploymentId": DEPLOYMENT, "status": status}, **info)},
        {"deploymentId": DEPLOYMENT},
    )


def test_tracker_follows_baking_to_success_without_continuing(cd, clock):
    client, stubber = cd
    for status in ("InProgress", "Baking", "Baking", "Succeeded"):
        get(stubber, status)
    tracker = Tracker(client, DEPLOYMENT, poll=5, timeout=600, clock=clock, sleep=clock.sleep)
    assert tracker.run()["status"] == "Succeeded"
    assert [e["status"] for e in tracker.timeline] == ["InProgress", "Baking", "Succeeded"]
    assert clock.sleeps == [5, 5, 5]  # no ContinueDeployment: the stubber fails on any call not queued


def test_tracker_returns_in_the_termination_wait_when_told_not_to_follow_it(cd, clock):
    client, stubber = cd
    get(stubber, "InProgress")
    get(stubber, "InProgress", instanceTerminationWaitTimeStarted=True)
    tracker = Tracker(
        client, DEPLOYMENT, follow_termination_wait=False, poll=5, timeout=600, clock=clock, sleep=clock.sleep
    )
    assert tracker.run()["status"] == "TerminationWait"  # one poll into the wait, not to Succeeded
    assert [e["status"] for e in tracker.timeline] == ["InProgress", "TerminationWait"]


def test_tracker_times_out_while_baking_and_says_so(cd, clock):
    client, stubber = cd
    for _poll in range(4):
        get(stubber, "Baking")
    tracker = Tracker(client, DEPLOYMENT, poll=10, timeout=25, clock=clock, sleep=clock.sleep)
    with pytest.raises(DeploymentError, match=f"wait_timeout: deployment {DEPLOYMENT} still Baking after 25s") as e:
        tracker.run()
    assert e.value.result["status"] == "Baking"


def test_tracker_rides_out_throttled_polls_and_a_throttled_continue(cd, clock):
    client, stubber = cd
    get(stubber, "Ready")
    params = {"deploymentId": DEPLOYMENT, "deploymentWaitType": "READY_WAIT"}
    stubber.add_client_error("continue_deployment", "ThrottlingException", "Rate exceeded", 400, params)
    stubber.add_response("continue_deployment", {}, params)
    stubber.add_client_error("get_deployment", "ThrottlingException", "Rate exceeded", 400)
    get(stubber, "Succeeded")
    tracker = Tracker(client, DEPLOYMENT, poll=1, timeout=60, clock=clock, sleep=clock.sleep)
    assert tracker.run()["status"] == "Succeeded"
    assert [e["status"] for e in tracker.timeline] == ["Ready", "ContinueRequested", "Succeeded"]


def test_tracker_leaves_a_ready_deployment_waiting_when_asked(cd, clock):
    client, stubber = cd
    get(stubber, "InProgress")
    get(stubber, "Ready")
    tracker = Tracker(client, DEPLOYMENT, continue_ready=False, poll=1, timeout=60, clock=clock, sleep=clock.sleep)
    assert tracker.run()["status"] == "Ready"  # and no ContinueDeployment: the stubber has none queued
    assert [e["status"] for e in tracker.timeline] == ["InProgress", "Ready", "LeftWaiting"]


def targets(stubber, *events):
    """One green instance whose lifecycle events have the given statuses (the Stubber checks both calls)."""
    stubber.add_response("list_deployment_targets", {"targetIds": ["i-0green"]}, {"deploymentId": DEPLOYMENT})
    lifecycle = [{"lifecycleEventName": name, "status": status} for name, status in events]
    stubber.add_response(
        "batch_get_deployment_targets",
        {
            "deploymentTargets": [
                {
                    "deploymentTargetType": "InstanceTarget",
                    "instanceTarget": {
                        "deploymentId": DEPLOYMENT,
                        "targetId": "i-0green",
                        "instanceLabel": "Green",
                        "lifecycleEvents": lifecycle,
                    },
                }
            ]
        },
        {"deploymentId": DEPLOYMENT, "targetIds": ["i-0green"]},
    )


def test_tracker_progress_reports_statuses_and_each_lifecycle_event_change_as_it_polls(cd, clock):
    client, stubber = cd
    get(stubber, "InProgress")
    targets(stubber, ("BeforeInstall", "InProgress"))
    get(stubber, "InProgress")
    targets(stubber, ("BeforeInstall", "Succeeded"), ("AfterInstall", "InProgress"))
    get(stubber, "Succeeded")
    targets(stubber, ("BeforeInstall", "Succeeded"), ("AfterInstall", "Succeeded"))
    seen = []
    tracker = Tracker(client, DEPLOYMENT, poll=5, timeout=600, clock=clock, sleep=clock.sleep, progress=seen.append)
    assert tracker.run()["status"] == "Succeeded"
    lifecycle = [(e["t"], e["lifecycle_event"], e["status"]) for e in seen if e.get("kind") == "lifecycle"]
    # each change once, when the poll saw it
    assert lifecycle == [
        (0, "BeforeInstall", "InProgress"),
        (5, "BeforeInstall", "Succeeded"),
        (5, "AfterInstall", "InProgress"),
        (10, "AfterInstall", "Succeeded"),
    ]
    assert [e["status"] for e in seen if e.get("kind") is None] == ["InProgress", "Succeeded"]
    assert tracker.timeline == [e for e in seen if e.get("kind") is None]  # the timeline keeps statuses only


def test_the_newest_deployment_skips_codedeploys_automatic_ones(cd):
    """A scale-out after a release makes a deployment (creator autoscaling) newer than the release: rollback.yml and
    codedeploy_deployment_info must still find the release, not stop CodeDeploy's deployment to one instance."""
    client, stubber = cd
    ids = ["d-RELEASE01", "d-SCALEOUT1", "d-AUTOUPD01"]
    stubber.add_response(
        "list_deployments", {"deployments": ids}, {"applicationName": APP, "deploymentGroupName": GROUP}
    )
    infos = [
        {"deploymentId": "d-RELEASE01", "creator": "user", "createTime": 1},
        {"deploymentId": "d-SCALEOUT1", "creator": "autoscaling", "createTime": 2},
        {"deploymentId": "d-AUTOUPD01", "creator": "CodeDeployAutoUpdate", "createTime": 3},
    ]
    stubber.add_response("batch_get_deployments", {"deploymentsInfo": infos}, {"deploymentIds": ids})
    assert codedeploy.latest_deployment(client, APP, GROUP) == "d-RELEASE01"


@pytest.mark.parametrize(
    "deployed, wanted, same",
    [
        (("b", "k", "v1", "e1"), ("b", "k", "v1", "e1"), True),
        (("b", "k", "v1", "e1"), ("b", "k", None, "e1"), True),  # check mode: the ETag of the bundle not uploaded
        (("b", "k", "v1", '"e1"'), ("b", "k", None, "e1"), True),
        (("b", "k", "v1", "e1"), ("b", "k", None, "e2"), False),
        (("b", "k", "v1", "e1"), ("b", "k", "v2", "e1"), False),  # another upload of the same bytes: another version
        (("b", "k", "v1", "e1"), ("b", "other", "v1", "e1"), False),
        (("b", "k", None, None), ("b", "k", None, None), False),  # nothing identifies the content
        (None, ("b", "k", None, "e1"), False),
    ],
)
def test_same_revision_compares_every_identity_known_on_both_sides(deployed, wanted, same):
    assert same_revision(deployed, wanted) is same
