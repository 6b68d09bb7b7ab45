#!/usr/bin/env bash
# make demo-local: the local blue/green main job on this machine, from a clean start.
#   1. v1 comes up behind HAProxy;  2. v2 is released through canary steps with health gates;
#   3. playbooks/rollback.yml returns all traffic to v1 at once;  4. a broken v3 is stopped by its gates
#   and rolled back while v1 keeps serving.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.venv/bin
export ANSIBLE_COLLECTIONS_PATH="$PWD/.build/collections" ANSIBLE_NOCOLOR=1 ANSIBLE_STDOUT_CALLBACK=default
demo=.build/demo
inventory=inventories/local/hosts.yml

stop_all() {
  for pidfile in "$demo"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    "$bin/python" roles/local_bluegreen/files/bluegreen_svc.py stop "$name" --dir "$demo/run" >/dev/null
  done
}
stop_all
rm -rf "$demo"

# served VERSION: 20 requests through the proxy; fails unless every one was answered by VERSION.
served() {
  "$bin/python" - "$1" <<'PY'
import collections, json, sys, urllib.request
seen = collections.Counter()
for _ in range(20):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080/version", timeout=2) as r:
            seen[json.load(r)["version"]] += 1
    except Exception as e:
        seen[type(e).__name__] += 1
print(f"served through the proxy: {dict(seen)}")
if seen != {sys.argv[1]: 20}:
    sys.exit(f"DEMO FAILED: expected every request answered by {sys.argv[1]}")
PY
}

step() { printf '\n===== %s\n' "$*"; }

step "1. bring up v1"
"$bin/ansible-playbook" -i "$inventory" playbooks/site.yml -e release_version=v1
served v1

step "2. release v2 through canary steps 10% -> 50% -> 90% -> 100% with health gates"
"$bin/ansible-playbook" -i "$inventory" playbooks/site.yml -e release_version=v2
served v2

step "3. playbooks/rollback.yml: all traffic back to v1 at once"
"$bin/ansible-playbook" -i "$inventory" playbooks/rollback.yml
served v1

step "4. release a broken v3 (healthy for 4 s, then failing): the gates stop it and roll back; v1 keeps serving"
if "$bin/ansible-playbook" -i "$inventory" playbooks/site.yml -e release_version=v3 \
     -e '{"release_app_args": ["--fail-after", "4"]}'; then
  echo "DEMO FAILED: the broken v3 was not stopped" >&2
  exit 1
fi
served v1

step "done: HAProxy on http://127.0.0.1:8080 (stop with: make demo-stop)"
