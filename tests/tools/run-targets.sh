#!/usr/bin/env bash
# Run the ansible-test integration targets (tests/integration/targets, cloud/aws) against the bgemu emulator.
# Usage: run-targets.sh <venv python> <collection tree> [ansible-test integration args...] [target...]
#   Without a target every cloud/aws target runs; with target names only those.
# With a real AWS account, use ansible-test directly with your own tests/integration/cloud-config-aws.ini instead.
set -euo pipefail
python=$1 tree=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(dirname "$python")

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
# AWS managed policies (AWSCodeDeployRole for the service role) as in an account; not by default, as loading them
# on every reset slows the pytest runs down.
# AWS time 100x faster (docs/emulator.md): CodeDeploy's lifecycle events, termination waits and the target groups'
# health checks take seconds, not minutes (role_codedeploy_release provisions a 25-minute termination wait: 15 s here).
MOTO_IAM_LOAD_MANAGED_POLICIES=true PYTHONPATH="$root/tests/emulator" "$python" -m bgemu --port "$port" --time-scale 0.01 >"$log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/_bgemu/status" >/dev/null 2>&1 && break
  kill -0 "$emulator" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.2
done

cat >"$tree/tests/integration/cloud-config-aws.ini" <<INI
[default]
aws_access_key = testing
aws_secret_key = testing
security_token =
aws_region = eu-west-1
aws_endpoint_url = http://127.0.0.1:$port
INI
targets=(cloud/aws/)
for arg in "$@"; do
  [[ $arg == -* ]] || targets=()
done
cd "$tree"
PATH="$bin:$PATH" "$bin/ansible-test" integration --local --python-interpreter "$python" --color no "$@" "${targets[@]}"
