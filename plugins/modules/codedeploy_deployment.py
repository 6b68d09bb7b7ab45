#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_deployment
version_added: 0.1.0
short_description: Create, follow, gate and stop CodeDeploy deployments of an S3 revision
description:
  - Creates a deployment of an S3 revision and waits for it with a timeline of statuses.
  - A revision that is already the group's last successful deployment is not deployed again (C(changed=false)).
  - When the group already has an active deployment, O(on_active) decides. V(fail) names the active deployment.
    V(attach) follows it instead of creating one. V(queue) waits for it to end (within O(wait_timeout)), then
    deploys O(revision), for a release that starts while the previous one keeps its original instances for the
    termination wait.
  - The revision is identified by its ETag (or S3 version), given or read with HeadObject, so new content uploaded to
    the same key is a new deployment, and the deployment downloads exactly that content.
  - For groups whose ready option is STOP_DEPLOYMENT, O(ready_gates) are evaluated when the deployment is C(Ready).
    ContinueDeployment(READY_WAIT) is sent only when they pass; otherwise the deployment is stopped with rollback.
  - At C(Ready) AWS has not registered the green instances with the load balancer yet (it does so after
    ContinueDeployment). So a V(target_health) gate on the deployment group's own target group would judge blue, and
    it is refused. Judge green with an V(http) gate whose URL holds C({private_ip}); the module finds the
    deployment's Green targets and probes each of them.
  - A gate still undecided when O(ready_gate_timeout) ends, or when the group's ready wait runs out, fails (the
    deployment is stopped); with O(on_undecided=hold) the deployment is left waiting in C(Ready) and the task fails with
    RV(status=Held). A gate whose own source errors counts as failed.
  - Gates that could never run are refused before anything is written. These are ready gates on a group that does not
    stop at Ready, bake gates on a group with no termination wait, and a bake longer than that wait.
  - A stop (a failed gate, or O(state=stopped)) is followed until CodeDeploy reports the deployment C(Stopped).
    StopDeployment itself only answers C(Pending). Then the rollback deployment CodeDeploy starts is followed to its
    own end, and its id and status are returned.
    With no ready gates the module continues at once, unless O(continue_ready=false), which returns with status
    C(Ready) and leaves the deployment waiting (for a person in the console, or a later run with O(on_active=attach)).
  - During the blue instances' termination wait, O(bake_gates) are evaluated for O(bake_seconds). A failing bake gate
    stops the deployment with rollback, so traffic goes back to blue.
  - On failure the module returns diagnostics naming the instance, lifecycle event, script, error code and log tail.
  - O(state=stopped) stops the group's active deployment with rollback and returns once the rollback has ended.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  application:
    description: The CodeDeploy application.
    type: str
    required: true
  deployment_group:
    description: The deployment group.
    type: str
    required: true
  state:
    description: V(present) deploys O(revision); V(stopped) stops the active deployment with rollback.
    type: str
    choices: ['present', 'stopped']
    default: present
  revision:
    description: The S3 revision. Required with O(state=present).
    type: dict
    suboptions:
      bucket:
        description: S3 bucket.
        type: str
        required: true
      key:
        description: S3 key.
        type: str
        required: true
      bundle_type:
        description: Bundle type.
        type: str
        choices: ['zip', 'tar', 'tgz']
        default: zip
      version:
        description: S3 object version.
        type: str
      etag:
        description: S3 ETag.
        type: str
  description:
    description: Description of the deployment.
    type: str
  on_active:
    description:
      - What to do when the group already has an active deployment, including one that someone else started between
        this module's look and its CreateDeployment (AWS refuses the create with DeploymentLimitExceededException).
      - V(queue) waits for the active deployment, and any started after it, to end (succeeded or not), then goes on
        as if there had been none (a revision that is then the last successful one is not deployed again). In check
        mode it does not wait and reports RV(status=WouldCreate) with RV(queued_behind).
    type: str
    choices: ['fail', 'attach', 'queue']
    default: fail
  wait:
    description: Follow the deployment to its end.
    type: bool
    default: true
  wait_termination:
    description:
      - With O(wait), whether to follow the deployment through the original instances' termination wait to its end.
      - V(false) returns once the termination wait has started and the O(bake_gates) (if any) passed, with
        RV(status=TerminationWait). Traffic is on the replacement instances, the deployment is still C(InProgress) and
        the original instances stay until the wait ends, so O(state=stopped) in that window rolls back in seconds.
    type: bool
    default: true
  continue_ready:
    description:
      - Whether to send ContinueDeployment(READY_WAIT) when the deployment is C(Ready) and no O(ready_gates) are given.
      - V(false) returns at C(Ready) with traffic still on the original instances; the group's ready wait time
        then decides (nobody continuing means C(Stopped)).
      - Ignored when O(ready_gates) are given (they decide).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to follow it before failing with what it was waiting for.
    type: int
    default: 3600
  poll_interval:
    description: Seconds between two polls.
    type: float
    default: 5
  ready_gate_timeout:
    description:
      - Seconds the O(ready_gates) may take to pass. Unset, they may take until the group's ready wait runs out (or
        O(wait_timeout)).
    type: float
  on_undecided:
    description:
      - What O(ready_gates) still undecided at the end of their window mean. V(fail) stops the deployment with rollback.
      - V(hold) leaves it waiting in C(Ready), traffic on the original instances, and fails the task with
        RV(status=Held). Run again with O(on_active=attach) to judge it again, or O(state=stopped).
      - Bake gates have no hold (the termination wait ends on its own). Undecided bake gates fail.
    type: str
    choices: ['fail', 'hold']
    default: fail
  bake_seconds:
    description:
      - How long to evaluate O(bake_gates). It must fit in the group's termination wait.
    type: int
    default: 300
  gate_interval:
    description: Seconds between two gate evaluations.
    type: float
    default: 5
extends_documentation_fragment:
  - bluegreen.aws.release.abort
  - bluegreen.aws.progress
  - bluegreen.aws.gates.codedeploy
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Deploy v42, reroute only when the green fleet passes its deep health check, bake 10 minutes
  bluegreen.aws.codedeploy_deployment:
    application: web
    deployment_group: web-prod
    revision:
      bucket: releases
      key: web/web-v42.zip
      etag: "{{ bundle.md5 }}"  # codedeploy_bundle's md5 is the ETag of a single-part upload; omit to read it
    description: "v42 by {{ lookup('env', 'USER') }}"
    ready_gates:
      - name: green-deep-health
        urls: ["http://{private_ip}:8080/health/deep"]  # probed on every green instance, all must pass
        success_threshold: 3
    bake_gates:
      - type: cloudwatch_alarm
        alarm_names: [web-prod-5xx]
    bake_seconds: 600

- name: Deploy whatever the key holds now (its ETag is read with HeadObject and pinned)
  bluegreen.aws.codedeploy_deployment:
    application: web
    deployment_group: web-prod
    revision:
      bucket: releases
      key: web/web-latest.zip

- name: Stop the active deployment and return traffic to blue (returns when the rollback deployment has ended)
  bluegreen.aws.codedeploy_deployment:
    application: web
    deployment_group: web-prod
    state: stopped
"""

RETURN = r"""
deployment_id:
  description: The deployment followed, null when nothing was deployed or stopped.
  returned: always
  type: str
  sample: d-ABCDEF123
status:
  description:
    - Its last status; V(Held) when undecided ready gates left it waiting (O(on_undecided=hold)).
    - V(TerminationWait) when O(wait_termination=false) returned during the termination wait (it is still
      C(InProgress)).
  returned: always
  type: str
  sample: Succeeded
timeline:
  description: Statuses, gate evaluations and the requests the module made, with seconds since the start.
  returned: always
  type: list
  elements: dict
  sample: [{"t": 0.0, "status": "Created"}, {"t": 31.2, "status": "Ready"}]
revision:
  description: The revision deployed, with the ETag (and version) that identifies it.
  returned: when O(state=present)
  type: dict
  sample: {"bucket": "releases", "key": "web/web-v42.zip", "bundle_type": "zip", "etag": "9e107d9d372bb6826bd81d3"}
queued_behind:
  description: With O(on_active=queue), the deployments this one waited for (in check mode, the one it would wait for).
  returned: when it queued
  type: list
  elements: str
  sample: ["d-ABCDEF123"]
rollback_deployment_id:
  description: The rollback deployment CodeDeploy started after a stop or a failure (followed to its end), or null.
  returned: always
  type: str
  sample: d-ROLLBACK12
rollback_status:
  description: The rollback deployment's final status.
  returned: when a rollback deployment was followed
  type: str
  sample: Succeeded
traffic:
  description: Where the traffic is after O(state=stopped), as the rollback's outcome says.
  returned: when O(state=stopped) stopped a deployment
  type: str
  sample: "rollback deployment d-ROLLBACK12 Succeeded: traffic is back on the original instances"
aborted:
  description: Whether an operator's abort mark stopped the deployment (see O(abort)).
  returned: when O(abort) is given and the module waited
  type: bool
  sample: false
abort_check:
  description: How the abort mark was watched (bucket, key, checks, errors, last_error, and the mark that stopped it).
  returned: when O(abort) is given and the module waited
  type: dict
  sample: {"bucket": "my-release-state", "key": "bluegreen/web/prod/abort.json", "checks": 12, "errors": 0,
           "last_error": null, "mark": null}
diagnostics:
  description: The failed lifecycle events, per instance.
  returned: always
  type: list
  elements: dict
  sample: [{"instance_id": "i-0123", "lifecycle_event": "ValidateService", "script": "scripts/validate_service.sh",
            "error_code": "ScriptFailed", "message": "...", "log_tail": "..."}]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import ActiveDeployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import DeploymentError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import DeploymentGroupError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import RevisionError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import Tracker
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import active_deployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import check_gates_can_run
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import create_deployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import deployment_targets
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import diagnostics
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import get_deployment_group
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import last_successful_revision
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import queue_behind
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import resolve_revision
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import same_revision
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GATE_OPTIONS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateError
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import build_gates
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import progress_file
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ABORT_OPTIONS
from ansible_collections.bluegreen.aws.plugins.module_utils.release import abort_result
from ansible_collections.bluegreen.aws.plugins.module_utils.release import abort_watch


def main():
    argument_spec = dict(
        application=dict(type="str", required=True),
        deployment_group=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "stopped"], default="present"),
        revision=dict(
            type="dict",
            options=dict(
                bucket=dict(type="str", required=True),
                key=dict(type="str", required=True, no_log=False),  # an S3 object key, not a secret
                bundle_type=dict(type="str", choices=["zip", "tar", "tgz"], default="zip"),
                version=dict(type="str"),
                etag=dict(type="str"),
            ),
        ),
        description=dict(type="str"),
        on_active=dict(type="str", choices=["fail", "attach", "queue"], default="fail"),
        wait=dict(type="bool", default=True),
        wait_termination=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        poll_interval=dict(type="float", default=5),
        ready_gates=dict(type="list", elements="dict", default=[], options=GATE_OPTIONS),
        ready_gate_timeout=dict(type="float"),
        on_undecided=dict(type="str", choices=["fail", "hold"], default="fail"),
        bake_gates=dict(type="list", elements="dict", default=[], options=GATE_OPTIONS),
        bake_seconds=dict(type="int", default=300),
        continue_ready=dict(type="bool", default=True),
        gate_interval=dict(type="float", default=5),
        abort=dict(type="dict", options=ABORT_OPTIONS),
        progress_file=dict(type="path"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, supports_check_mode=True, required_if=[("state", "present", ["revision"])]
    )
    p = module.params
    backoff = retry()

    def client(service):
        return module.client(service, retry_decorator=backoff)

    codedeploy = client("codedeploy")
    result = dict(deployment_id=None, status=None, timeline=[], diagnostics=[], rollback_deployment_id=None)
    try:
        ready_gates = build_gates(p["ready_gates"], client, option="ready_gates", templates=True)
        bake_gates = build_gates(p["bake_gates"], client, option="bake_gates", templates=True)
        if p["state"] == "present" and (ready_gates or bake_gates):
            group = get_deployment_group(codedeploy, p["application"], p["deployment_group"])
            check_gates_can_run(group, p)
        active = active_deployment(codedeploy, p["application"], p["deployment_group"])
        tracker_options = dict(
            abort=abort_watch(module),
            ec2=client("ec2"),
            poll=p["poll_interval"],
            timeout=p["wait_timeout"],
            gate_interval=p["gate_interval"],
            progress=progress_file(p["progress_file"], "codedeploy_deployment"),
        )
        if p["state"] == "stopped":
            stop(module, codedeploy, active, result, tracker_options)

        revision = resolve_revision(client("s3"), p["revision"])
        result["revision"] = revision
        changed = False
        if active is not None and p["on_active"] == "queue" and not module.check_mode:
            result["queued_behind"] = queue_behind(
                codedeploy, p["application"], p["deployment_group"], active, p["wait_timeout"], p["poll_interval"]
            )
            active = None
        elif active is not None and p["on_active"] == "queue":
            result.update(status="WouldCreate", queued_behind=[active])
            module.exit_json(changed=True, **result)
        if active is not None:
            deployment_id = follow_active(module, active, result)
        elif same_revision(
            last_successful_revision(codedeploy, p["application"], p["deployment_group"]), revision_key(revision)
        ):
            result["status"] = "Succeeded"
            module.exit_json(changed=False, **result)
        elif module.check_mode:
            result["status"] = "WouldCreate"
            module.exit_json(changed=True, **result)
        else:
            try:
                deployment_id = create_deployment(
                    codedeploy, p["application"], p["deployment_group"], revision, p["description"]
                )
                changed = True
            except ActiveDeployment as e:  # started by someone else between our look and our create
                deployment_id = follow_active(module, e.deployment_id, result)
                changed = p["on_active"] == "queue"  # follow_active queued behind it and created ours
        result.update(deployment_id=deployment_id)
        if not p["wait"] or module.check_mode:
            module.exit_json(changed=changed, **result)
        tracker = Tracker(
            codedeploy,
            deployment_id,
            ready_gates=ready_gates,
            continue_ready=p["continue_ready"],
            on_undecided=p["on_undecided"],
            ready_gate_timeout=p["ready_gate_timeout"],
            bake_gates=bake_gates,
            bake_seconds=p["bake_seconds"],
            follow_termination_wait=p["wait_termination"],
            **tracker_options,
        )
        finish(module, codedeploy, tracker, result, changed)
    except (GateError, DeploymentGroupError, RevisionError) as e:
        module.fail_json(msg=str(e), **result)
    except DeploymentError as e:  # on_active=queue: the active deployment outlasted wait_timeout
        result.update(e.result)
        module.fail_json(msg=str(e), **result)
    except ActiveDeployment as e:  # on_active=queue: yet another deployment started between the wait and our create
        module.fail_json(
            msg=f"deployment group {p['deployment_group']}: deployment {e.deployment_id} started while this one was "
            "queued; run again to queue behind it",
            **result,
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to deploy to {p['application']}/{p['deployment_group']}", **result)


def follow(module, tracker, result, changed):
    """Run the tracker; its timeline, status and rollback go into ``result``. A timeout fails the task."""
    try:
        info = tracker.run()
    except DeploymentError as e:
        result.update(e.result, **abort_result(module, tracker.abort))
        module.fail_json(msg=str(e), changed=changed, **result)
    result.update(status=info["status"], timeline=tracker.timeline, **abort_result(module, tracker.abort))
    if tracker.rollback:
        result.update(
            rollback_deployment_id=tracker.rollback["deployment_id"], rollback_status=tracker.rollback["status"]
        )
    return info


def finish(module, codedeploy, tracker, result, changed):
    """Follow the deployment (and a rollback) to its end and exit with what happened."""
    info = follow(module, tracker, result, changed)
    if info["status"] in ("Succeeded", "Ready", "TerminationWait"):
        module.exit_json(changed=changed, **result)
    if info["status"] == "Held":
        module.fail_json(
            msg=f"deployment {tracker.deployment_id} held in Ready: {tracker.stop_reason}; traffic is on the original "
            "instances. Continue it with on_active=attach once the green instances are healthy, or stop it with "
            "state=stopped",
            changed=changed,
            **result,
        )
    result["diagnostics"] = diagnostics(deployment_targets(codedeploy, tracker.deployment_id))
    reason = tracker.stop_reason or (info.get("errorInformation") or {}).get("message") or "no reason given"
    module.fail_json(
        msg=f"deployment {tracker.deployment_id} {info['status']}: {reason}; {traffic_sentence(tracker)}",
        changed=changed,
        **result,
    )


def traffic_sentence(tracker):
    """Where the traffic is after a failed or stopped deployment, as CodeDeploy reports it."""
    if tracker.rollback is None:
        return "no rollback deployment was started (traffic never left the original instances, or rollback is off)"
    rollback_id, status = tracker.rollback["deployment_id"], tracker.rollback["status"]
    if status == "Succeeded":
        return f"rollback deployment {rollback_id} Succeeded: traffic is back on the original instances"
    return (
        f"rollback deployment {rollback_id} ended {status}: traffic may not be on the original instances; "
        f"see bluegreen.aws.codedeploy_deployment_info deployment_id={rollback_id} and the target group"
    )


def stop(module, codedeploy, active, result, tracker_options):
    """state=stopped: stop the active deployment with rollback, follow it to Stopped and the rollback to its end."""
    if active is None:
        module.exit_json(changed=False, **result)
    result["deployment_id"] = active
    if module.check_mode:
        module.exit_json(changed=True, **dict(result, status="WouldStop"))
    tracker = Tracker(codedeploy, active, **tracker_options)
    tracker.stop("state=stopped")
    info = follow(module, tracker, result, True)
    if tracker.rollback and tracker.rollback["status"] != "Succeeded":
        module.fail_json(
            msg=f"deployment {active} {info['status']}; {traffic_sentence(tracker)}", changed=True, **result
        )
    result["traffic"] = traffic_sentence(tracker)
    module.exit_json(changed=True, **result)


def follow_active(module, active, result):
    """The deployment to follow when the group already has an active one: on_active=fail stops here, naming it;
    queue (another deployment started between our look and our create) waits for it and creates ours."""
    p = module.params
    if p["on_active"] == "queue":
        codedeploy = module.client("codedeploy", retry_decorator=retry())
        result["queued_behind"] = result.get("queued_behind", []) + queue_behind(
            codedeploy, p["application"], p["deployment_group"], active, p["wait_timeout"], p["poll_interval"]
        )
        return create_deployment(
            codedeploy, p["application"], p["deployment_group"], result["revision"], p["description"]
        )
    if p["on_active"] == "fail":
        module.fail_json(
            msg=f"deployment group {module.params['deployment_group']} already has an active deployment {active}; "
            "set on_active=attach to follow it, or state=stopped to stop it",
            **result,
        )
    return active


def revision_key(revision):
    return (revision.get("bucket"), revision.get("key"), revision.get("version"), revision.get("etag"))


if __name__ == "__main__":
    main()
