#!/usr/bin/env bash
# Role aws_infra from an empty account and back, on AWS (ansible-test integration cloud/aws) and on the emulator
# (make targets): --check first (check mode is the command line's, which a role included in a play cannot switch on),
# then the real run, a second run that must change nothing, and the teardown, which must leave nothing. The fleet has
# no instances (size 0): releases are the strategy roles' (tests/integration/test_aws_infra.py, test_alb_strategy.py).
set -eux -o pipefail
ansible-playbook playbooks/check.yml -i "$INVENTORY_PATH" --check "$@"
second=$(mktemp)
rc=0
{
  ansible-playbook playbooks/provision.yml -i "$INVENTORY_PATH" "$@" &&
    ansible-playbook playbooks/provision.yml -i "$INVENTORY_PATH" "$@" | tee "$second" &&
    grep -Eq '^testhost +: ok=[0-9]+ +changed=0 ' "$second"
} || rc=$?
rm -f "$second"
ansible-playbook playbooks/teardown.yml -i "$INVENTORY_PATH" "$@"
exit "$rc"
