# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the traffic modules share: building the router from module parameters, one argument spec."""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import HAS_BOTO3
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.routers.alb import AlbRouter
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
