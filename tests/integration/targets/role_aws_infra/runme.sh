#!/usr/bin/env bash
# Role aws_infra from an empty account and back, on AWS (ansible-test integration cloud/aws) and on the emulator
# (make targets): --check first (check mode is the command line's, which a role included in a play cannot switch on),
# then the real run, a second run that re-creates nothing, and the teardown. The fleet has no instances (size 0):
# releases are the strategy roles' (tests/integration/test_aws_infra.py, test_alb_strategy.py).
set -eux
ansible-playbook playbooks/check.yml -i "$INVENTORY_PATH" --check "$@"
ansible-playbook playbooks/full.yml -i "$INVENTORY_PATH" "$@"
