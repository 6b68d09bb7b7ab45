"""Every instance the emulator launches has its own address, loopback and files, and terminating it ends all of it."""

import os
import subprocess
import time

from cdfleet import addresses
from cdfleet import run_in
from dataplane import get

SERVE = "import http.server as h, sys; h.test(HandlerClass=h.SimpleHTTPRequestHandler, port=8080, bind=sys.argv[1])"


def launch(emulator, count):
    ec2 = emulator.client("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reservation = ec2.run_instances(ImageId=ami, MinCount=count, MaxCount=count)
    return [i["InstanceId"] for i in reservation["Instances"]]


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def start_server(emulator, instance_id, bind, directory):
    """A detached web server inside the instance serving ``directory`` on port 8080; returns its host pid."""
    answer = run_in(
        emulator,
        instance_id,
        "sh",
        "-c",
        f'cd {directory} && setsid python3 -c "{SERVE}" {bind} >/dev/null 2>&1 </dev/null & echo $!',
    )
    assert answer["returncode"] == 0, answer
    return int(answer["stdout"])


def wait_answer(url, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get(url)
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.05)


def test_each_instance_has_its_own_address_loopback_and_files(emulator):
    first, second = launch(emulator, 2)
    ips = addresses(emulator, [first, second])
    assert ips[first] != ips[second] and all(ip.startswith("10.231.") for ip in ips.values())
    known = emulator.admin("instances")
    assert {i: known[i]["address"] for i in (first, second)} == ips
    for instance_id in (first, second):  # the same path, a different file in each instance's view
        write = run_in(emulator, instance_id, "sh", "-c", f"mkdir -p /etc/web && echo {instance_id} > /etc/web/who")
        assert write["returncode"] == 0, write
    assert not os.path.exists("/etc/web/who")  # the host's /etc is untouched
    for instance_id in (first, second):
        assert run_in(emulator, instance_id, "cat", "/etc/web/who")["stdout"] == f"{instance_id}\n"
        # the same port in both, on the instance's loopback only; each answers with its own /etc/web
        start_server(emulator, instance_id, "127.0.0.1", "/etc/web")
    for instance_id in (first, second):
        fetch = run_in(
            emulator,
            instance_id,
            "sh",
            "-c",
            "for i in $(seq 100); do curl -fsS http://127.0.0.1:8080/who && break; sleep 0.1; done",
        )
        assert fetch["stdout"] == f"{instance_id}\n", fetch
    # nothing listens on the instances' addresses yet: loopback is the instance's own
    assert (
        run_in(emulator, first, "curl", "-sS", "--max-time", "2", f"http://{ips[second]}:8080/who")["returncode"] != 0
    )
    start_server(emulator, second, ips[second], "/etc/web")
    status, body = wait_answer(f"http://{ips[second]}:8080/who")  # the host reaches the instance at its address
    assert (status, body) == (200, f"{second}\n")


def test_terminating_an_instance_kills_its_processes_and_removes_its_namespaces(emulator):
    first, second = launch(emulator, 2)
    known = emulator.admin("instances")
    pids = {i: start_server(emulator, i, "0.0.0.0", "/") for i in (first, second)}
    assert all(os.path.exists(f"/proc/{pid}") for pid in pids.values())
    assert {known[first]["netns"], known[second]["netns"]} <= netns_names()

    emulator.client("ec2").terminate_instances(InstanceIds=[first])
    assert not os.path.exists(f"/proc/{pids[first]}") or open(f"/proc/{pids[first]}/stat").read().split()[2] == "Z"
    assert known[first]["netns"] not in netns_names()
    assert first not in emulator.admin("instances")
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert f" {known[first]['link']}@" not in host_links and f" {known[second]['link']}@" in host_links
    assert os.path.exists(f"/proc/{pids[second]}")  # the other instance runs on

    emulator.reset()  # a reset ends every instance
    assert not os.path.exists(f"/proc/{pids[second]}") or open(f"/proc/{pids[second]}/stat").read().split()[2] == "Z"
    assert known[second]["netns"] not in netns_names()
    assert emulator.admin("instances") == {}
    mounts = open("/proc/self/mountinfo").read()
    assert first not in mounts and second not in mounts


def test_scale_in_terminates_the_instance_and_its_namespace(emulator):
    ec2, asg = emulator.client("ec2"), emulator.client("autoscaling")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="g",
        LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=2,
        AvailabilityZones=[f"{emulator.region}a"],
    )
    known = emulator.admin("instances")
    assert len(known) == 2
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=0)
    assert emulator.admin("instances") == {}
    assert not {m["netns"] for m in known.values()} & netns_names()
