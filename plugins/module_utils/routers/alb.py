# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ALB router: ``forward`` weights between two target groups on a listener's default action or on one rule.

Writes keep everything else of the action list as it was: other actions (authenticate, ...), their
order, other target groups of the forward and their weights, and ``TargetGroupStickinessConfig``.
A write that would not change the weights is not sent.  The client must come from
``module.client("elbv2", retry_decorator=...)``: every call passes ``aws_retry=True``.
"""

from __future__ import annotations

import copy

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.bluegreen.aws.plugins.module_utils import elbv2
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import Router
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError


def describe_target_group(client, value, parameter):
    try:
        return elbv2.describe_target_group(client, value, parameter)
    except elbv2.TargetGroupNotFound as e:
        raise RouterError(str(e)) from e


class AlbRouter(Router):
    kind = "alb"

    def __init__(self, client, listener_arn, stable, canary, rule_arn=None):
        if not listener_arn:
            raise RouterError("alb.listener_arn is required: the listener whose forward weights are switched")
        self.client = client
        self.listener_arn = listener_arn
        self.rule_arn = rule_arn
        listener = self._listener()
        self.load_balancer_arn = listener["LoadBalancerArn"]
        super().__init__(stable, canary)
        resolved = self._resolve({"stable": stable, "canary": canary})
        self.arns = {stable: resolved["stable"], canary: resolved["canary"]}

    # -- lookups --------------------------------------------------------------------------------------
    def _listener(self):
        try:
            found = self.client.describe_listeners(ListenerArns=[self.listener_arn], aws_retry=True)["Listeners"]
        except is_boto3_error_code(["ListenerNotFound", "ValidationError"]) as e:
            raise RouterError(f"alb.listener_arn: listener {self.listener_arn} not found") from e
        return found[0]

    def _resolve(self, given):
        """Target group names or ARNs to ARNs, refusing groups that cannot serve this load balancer."""
        lb = self.client.describe_load_balancers(LoadBalancerArns=[self.load_balancer_arn], aws_retry=True)
        vpc = lb["LoadBalancers"][0].get("VpcId")
        arns = {}
        for role, value in given.items():
            group = describe_target_group(self.client, value, role)
            attached = group.get("LoadBalancerArns", [])
            if group.get("VpcId") != vpc or (attached and self.load_balancer_arn not in attached):
                raise RouterError(
                    f"{role}: target group {value} belongs to another load balancer or VPC "
                    f"(VPC {group.get('VpcId')}, load balancers {attached or 'none'}); "
                    f"the listener's load balancer is in VPC {vpc}"
                )
            arns[role] = group["TargetGroupArn"]
        return arns

    def _actions(self):
        if self.rule_arn:
            try:
                rules = self.client.describe_rules(RuleArns=[self.rule_arn], aws_retry=True)["Rules"]
            except is_boto3_error_code(["RuleNotFound", "ValidationError"]) as e:
                raise RouterError(f"alb.rule_arn: rule {self.rule_arn} not found") from e
            return rules[0]["Actions"]
        return self._listener()["DefaultActions"]

    @staticmethod
    def _forward(actions):
        forwards = [a for a in actions if a["Type"] == "forward"]
        if len(forwards) != 1:
            raise RouterError(f"alb: expected exactly one forward action, found {len(forwards)}")
        return forwards[0]

    # -- protocol -------------------------------------------------------------------------------------
    def raw_weights(self, actions=None):
        forward = self._forward(self._actions() if actions is None else actions)
        groups = forward.get("ForwardConfig", {}).get("TargetGroups")
        if groups is None:  # plain "TargetGroupArn" forward: all traffic to one group
            groups = [{"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}]
        by_arn = {g["TargetGroupArn"]: g.get("Weight", 1) for g in groups}
        return {pool: by_arn.get(self.arns[pool], 0) for pool in self.pools}

    def read(self):
        return self.normalize(self.raw_weights())

    def write(self, weights):
        actions = copy.deepcopy(self._actions())
        raw = self.raw_weights(actions)
        if all(raw.get(pool) == weights[pool] for pool in self.pools):
            return False
        forward = self._forward(actions)
        config = forward.get("ForwardConfig") or {}
        groups = config.get("TargetGroups") or [{"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}]
        ours = set(self.arns.values())
        others = [g for g in groups if g["TargetGroupArn"] not in ours]
        config["TargetGroups"] = others + [
            {"TargetGroupArn": self.arns[pool], "Weight": int(weights[pool])} for pool in self.pools
        ]
        forward.pop("TargetGroupArn", None)  # the API takes one or the other
        forward["ForwardConfig"] = config
        if self.rule_arn:
            self.client.modify_rule(RuleArn=self.rule_arn, Actions=actions, aws_retry=True)
        else:
            self.client.modify_listener(ListenerArn=self.listener_arn, DefaultActions=actions, aws_retry=True)
        return True

    def health(self):
        """Per pool: target count per state, from DescribeTargetHealth (one call per pool)."""
        found = {}
        for pool in self.pools:
            states = {}
            descriptions = self.client.describe_target_health(TargetGroupArn=self.arns[pool], aws_retry=True)
            for target in descriptions["TargetHealthDescriptions"]:
                state = target["TargetHealth"]["State"]
                states[state] = states.get(state, 0) + 1
            found[pool] = states
        return found
