"""Target health from real HTTP checks of local endpoints, proved with plain boto3 and the demo app."""

import socket
import subprocess
import sys
import time

import pytest
from dataplane import DEMO_APP
from dataplane import free_port


@pytest.fixture
def app(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, DEMO_APP, "--port", str(port), "--state-dir", str(tmp_path)])
    yield {"endpoint": f"127.0.0.1:{port}", "fail_flag": tmp_path / "fail"}
    proc.terminate()
    proc.wait(5)


def target_group(emulator, **health):
    ec2 = emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    elb = emulator.client("elbv2")
    params = dict(
        HealthCheckPath="/health", HealthCheckIntervalSeconds=10, HealthyThresholdCount=2, UnhealthyThresholdCount=2
    )
    params.update(health)
    tg = elb.create_target_group(Name="green", Protocol="HTTP", Port=80, VpcId=vpc, **params)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    return ec2, elb, tg, subnet


def launch(ec2, subnet, endpoint=None):
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "bgemu:endpoint", "Value": endpoint}]}] if endpoint else []
    return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet, TagSpecifications=tags)["Instances"][
        0
    ]["InstanceId"]


def health(elb, tg, iid):
    (answer,) = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": iid}])["TargetHealthDescriptions"]
    return answer["TargetHealth"]


def state(elb, tg, iid):
    return health(elb, tg, iid)["State"]


def whole_group(elb, tg):
    """DescribeTargetHealth without a Targets filter: {target id: state}."""
    answer = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in answer}


def eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_initial_then_healthy_then_unhealthy_when_the_endpoint_fails(emulator, app):
    ec2, elb, tg, subnet = target_group(emulator)
    iid = launch(ec2, subnet, app["endpoint"])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    assert state(elb, tg, iid) == "initial"
    eventually(lambda: state(elb, tg, iid) == "healthy")
    app["fail_flag"].touch()  # the app's /health answers 503 from now on
    eventually(lambda: state(elb, tg, iid) == "unhealthy")
    app["fail_flag"].unlink()
    eventually(lambda: state(elb, tg, iid) == "healthy")


def test_nobody_answering_is_unhealthy(emulator):
    ec2, elb, tg, subnet = target_group(emulator)
    iid = launch(ec2, subnet, f"127.0.0.1:{free_port()}")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    eventually(lambda: state(elb, tg, iid) == "unhealthy")
    assert health(elb, tg, iid)["Reason"] == "Target.FailedHealthChecks"  # the connection was refused


def test_a_wrong_status_is_a_response_code_mismatch_with_the_code(emulator, app):
    ec2, elb, tg, subnet = target_group(emulator)
    app["fail_flag"].touch()
    iid = launch(ec2, subnet, app["endpoint"])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    eventually(lambda: state(elb, tg, iid) == "unhealthy")
    answer = health(elb, tg, iid)
    assert answer["Reason"] == "Target.ResponseCodeMismatch"
    assert answer["Description"] == "Health checks failed with these codes: [503]"


def test_an_endpoint_that_never_answers_is_a_timeout(emulator):
    """A socket that accepts connections but never answers: the check times out (Target.Timeout)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        ec2, elb, tg, subnet = target_group(emulator)
        iid = launch(ec2, subnet, f"127.0.0.1:{silent.getsockname()[1]}")
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
        eventually(lambda: state(elb, tg, iid) == "unhealthy")
        assert health(elb, tg, iid)["Reason"] == "Target.Timeout"


def test_matcher_and_admin_endpoint_mapping(emulator, app):
    ec2, elb, tg, subnet = target_group(emulator, HealthCheckPath="/nope", Matcher={"HttpCode": "404"})
    iid = launch(ec2, subnet)
    emulator.admin("endpoints", "POST", {"instance_id": iid, "endpoint": app["endpoint"]})
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    eventually(lambda: state(elb, tg, iid) == "healthy")  # the demo app answers 404 on /nope: expected here


def test_admin_flip_and_draining_for_the_deregistration_delay(emulator, app):
    ec2, elb, tg, subnet = target_group(emulator)
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}]
    )
    iid = launch(ec2, subnet, app["endpoint"])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    eventually(lambda: state(elb, tg, iid) == "healthy")
    emulator.admin("health", "POST", {"instance_id": iid, "healthy": False})
    eventually(lambda: state(elb, tg, iid) == "unhealthy")
    emulator.admin("health", "POST", {"instance_id": iid, "healthy": None})
    eventually(lambda: state(elb, tg, iid) == "healthy")
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    assert state(elb, tg, iid) == "draining"  # 60 AWS seconds = 0.6 s at time scale 0.01
    eventually(lambda: state(elb, tg, iid) == "unused")


def test_a_target_with_no_endpoint_is_unhealthy_never_healthy(emulator):
    """moto answers healthy for any registered target; AWS finds nothing answering: unhealthy."""
    ec2, elb, tg, subnet = target_group(emulator)
    iid = launch(ec2, subnet)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    seen = [state(elb, tg, iid)]
    deadline = time.monotonic() + 10
    while seen[-1] != "unhealthy":
        assert time.monotonic() < deadline, seen
        time.sleep(0.01)
        seen.append(state(elb, tg, iid))
    assert seen[0] == "initial" and "healthy" not in seen
    answer = health(elb, tg, iid)
    assert answer["Reason"] == "Target.FailedHealthChecks" and answer["Description"] == "Health checks failed"
    assert whole_group(elb, tg) == {iid: "unhealthy"}


def test_draining_targets_are_in_the_whole_group_answer_for_the_delay(emulator, app):
    ec2, elb, tg, subnet = target_group(emulator)
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "100"}]
    )
    old, new = launch(ec2, subnet, app["endpoint"]), launch(ec2, subnet, app["endpoint"])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": old}])
    eventually(lambda: state(elb, tg, old) == "healthy")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": new}])
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": old}])
    started = time.monotonic()
    assert whole_group(elb, tg) == {old: "draining", new: "initial"}  # moto lists only `new`
    eventually(lambda: old not in whole_group(elb, tg))
    assert time.monotonic() - started >= 0.9  # 100 AWS seconds at time scale 0.01
    assert whole_group(elb, tg) == {new: "healthy"}
