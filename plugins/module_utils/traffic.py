# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the traffic modules share: building routers and gates from module parameters, one argument spec."""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import HAS_BOTO3
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import AlarmGate
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import TargetHealthGate
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.alb import AlbRouter
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.alb import describe_target_group
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.nginx import NginxRouter

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError

    AWS_ERRORS = (BotoCoreError, ClientError)
except ImportError:  # only router=alb needs botocore
    AWS_ERRORS = ()

ROUTER_ARGS = dict(
    router=dict(type="str", choices=["haproxy", "nginx", "alb"], default="haproxy"),
    stable=dict(type="str", required=True),
    canary=dict(type="str", required=True),
    haproxy=dict(
        type="dict",
        options=dict(
            socket=dict(type="path", required=True),
            backend=dict(type="str", required=True),
            config=dict(type="path"),
        ),
    ),
    nginx=dict(
        type="dict",
        options=dict(
            upstream_file=dict(type="path", required=True),
            upstream=dict(type="str", required=True),
            servers=dict(type="dict", required=True),
            conf=dict(type="path"),
            binary=dict(type="path", default="nginx"),
        ),
    ),
    alb=dict(
        type="dict",
        options=dict(
            listener_arn=dict(type="str", required=True),
            rule_arn=dict(type="str"),
        ),
    ),
)

GATE_OPTIONS = dict(
    type=dict(type="str", choices=["http", "target_health", "cloudwatch_alarm"], default="http"),
    name=dict(type="str"),
    urls=dict(type="list", elements="str"),
    expected_status=dict(type="list", elements="int", default=[200]),
    body_pattern=dict(type="str"),
    timeout=dict(type="float", default=5.0),
    success_threshold=dict(type="int", default=1),
    failure_threshold=dict(type="int", default=3),
    latency_ceiling_ms=dict(type="float"),
    target_group=dict(type="str"),
    min_healthy=dict(type="int", default=1),
    min_healthy_percent=dict(type="int", default=100),
    alarm_names=dict(type="list", elements="str"),
    insufficient_data=dict(type="str", choices=["pass", "pending", "fail"], default="pending"),
)
GATE_NEEDS = {"http": "urls", "target_health": "target_group", "cloudwatch_alarm": "alarm_names"}


def build_router(params, aws_client=None):
    """The router the parameters ask for; ``aws_client(service)`` gives retrying clients, for ``router=alb``."""
    kind = params["router"]
    options = params.get(kind)
    if not options:
        raise RouterError(f"router={kind} needs its options under '{kind}:' (for example {kind}.socket)")
    if kind == "haproxy":
        return HaproxyRouter(
            options["socket"], options["backend"], params["stable"], params["canary"], config_path=options["config"]
        )
    if kind == "nginx":
        return NginxRouter(
            options["upstream_file"],
            options["upstream"],
            options["servers"],
            params["stable"],
            params["canary"],
            conf=options["conf"],
            binary=options["binary"],
        )
    if kind == "alb":
        return AlbRouter(
            aws_client("elbv2"),
            options["listener_arn"],
            params["stable"],
            params["canary"],
            rule_arn=options["rule_arn"],
        )
    raise RouterError(f"router: unknown router {kind!r}")


def build_gates(raw, aws_client=None):
    """Gates from module parameters; ``aws_client(service)`` gives retrying clients for the AWS gates."""
    gates = []
    for index, spec in enumerate(raw or []):
        kind = spec["type"]
        name = spec["name"] or f"{kind}[{index}]"
        needed = GATE_NEEDS[kind]
        if not spec[needed]:
            raise RouterError(f"gates[{index}].{needed} is required for a {kind} gate")
        if kind != "http" and aws_client is None:
            raise RouterError(f"gates[{index}]: a {kind} gate needs boto3 and AWS credentials")
        try:
            if kind == "http":
                gates.append(
                    HttpGate(
                        spec["urls"],
                        expected_status=tuple(spec["expected_status"]),
                        body_pattern=spec["body_pattern"],
                        timeout=spec["timeout"],
                        success_threshold=spec["success_threshold"],
                        failure_threshold=spec["failure_threshold"],
                        latency_ceiling_ms=spec["latency_ceiling_ms"],
                        name=name,
                    )
                )
            elif kind == "target_health":
                elbv2 = aws_client("elbv2")
                gates.append(
                    TargetHealthGate(
                        elbv2,
                        describe_target_group(elbv2, spec["target_group"], f"gates[{index}].target_group")[
                            "TargetGroupArn"
                        ],
                        min_healthy=spec["min_healthy"],
                        min_healthy_percent=spec["min_healthy_percent"],
                        failure_threshold=spec["failure_threshold"],
                        name=name,
                    )
                )
            else:
                gates.append(
                    AlarmGate(aws_client("cloudwatch"), spec["alarm_names"], spec["insufficient_data"], name=name)
                )
        except ValueError as e:
            raise RouterError(f"gates[{index}]: {e}") from e
    return gates


def describe(router):
    """Current weights, the live pool, and (where the router knows it) health per pool."""
    weights = router.read()
    info = {
        "router": router.kind,
        "weights": weights,
        "live": router.live(weights),
        "stable": router.stable,
        "canary": router.canary,
    }
    health = getattr(router, "health", None)
    info["health"] = health() if health else {}
    return info


def aws_clients(module):
    """A factory of retrying AWS clients, or None when the module needs no AWS (no boto3 needed then)."""
    gates = module.params.get("gates") or []
    if module.params["router"] != "alb" and all(g["type"] == "http" for g in gates):
        return None
    if not HAS_BOTO3:
        module.fail_json(
            msg="router=alb and AWS gates need the boto3 and botocore Python packages on the module's host"
        )
    clients = {}

    def client(service):
        if service not in clients:
            clients[service] = module.client(service, retry_decorator=AWSRetry.jittered_backoff())
        return clients[service]

    return client
