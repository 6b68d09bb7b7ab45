# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the traffic modules share: building routers and gates from module parameters, one argument spec."""

from __future__ import annotations

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.nginx import NginxRouter

ROUTER_ARGS = dict(
    router=dict(type="str", choices=["haproxy", "nginx"], default="haproxy"),
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
)

GATE_OPTIONS = dict(
    type=dict(type="str", choices=["http"], default="http"),
    name=dict(type="str"),
    urls=dict(type="list", elements="str", required=True),
    expected_status=dict(type="list", elements="int", default=[200]),
    body_pattern=dict(type="str"),
    timeout=dict(type="float", default=5.0),
    success_threshold=dict(type="int", default=1),
    failure_threshold=dict(type="int", default=3),
    latency_ceiling_ms=dict(type="float"),
)


def build_router(params):
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
    raise RouterError(f"router: unknown router {kind!r}")


def build_gates(raw):
    gates = []
    for index, spec in enumerate(raw or []):
        if not spec["urls"]:
            raise RouterError(f"gates[{index}].urls must list at least one URL")
        try:
            gates.append(
                HttpGate(
                    spec["urls"],
                    expected_status=tuple(spec["expected_status"]),
                    body_pattern=spec["body_pattern"],
                    timeout=spec["timeout"],
                    success_threshold=spec["success_threshold"],
                    failure_threshold=spec["failure_threshold"],
                    latency_ceiling_ms=spec["latency_ceiling_ms"],
                    name=spec["name"] or f"http[{index}]",
                )
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
