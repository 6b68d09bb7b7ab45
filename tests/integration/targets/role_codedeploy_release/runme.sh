#!/usr/bin/env bash
# Role codedeploy_release (the codedeploy strategy) from an empty account and back, on AWS (ansible-test integration
# cloud/aws, see ../setup_bluegreen_release/vars/main.yml for the images) and on the emulator (make targets):
# provision + release v1; v2 in check mode writes nothing; v2 released, then again (no new deployment); a v3 that
# breaks after it started is stopped by its bake gates and rolled back, traffic on v2; the teardown leaves nothing.
set -eux -o pipefail
rc=0
{
  ansible-playbook playbooks/first.yml -i "$INVENTORY_PATH" "$@" &&
    ansible-playbook playbooks/check.yml -i "$INVENTORY_PATH" --check "$@" &&
    ansible-playbook playbooks/next.yml -i "$INVENTORY_PATH" "$@" &&
    ansible-playbook playbooks/broken.yml -i "$INVENTORY_PATH" "$@"
} || rc=$?
ansible-playbook playbooks/teardown.yml -i "$INVENTORY_PATH" "$@"
exit "$rc"
