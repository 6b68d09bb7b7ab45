#!/usr/bin/env bash
# ApplicationStart: read the app's secrets (SSM Parameter Store / Secrets Manager, with the instance role), run the
# container (name, ports, env file, secrets, restart policy, log volume) and wait until it is running. A container
# already running this image is left alone; any other one is replaced, once every secret has been read.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

image=$(image_ref)
if [ "$(container_state)" = running ] &&
  [ "$(engine container inspect --format '{{.Config.Image}}' "$APP_CONTAINER")" = "$image" ]; then
  log "$APP_CONTAINER already runs $image"
  exit 0
fi

# Secrets first: a missing secret or a denied read fails here and leaves the running container alone.
declare -A secrets=()
secret_args=()
if [ "${#APP_SECRET_NAMES[@]}" -gt 0 ]; then
  command -v aws >/dev/null || die "the AWS CLI is needed to read the app's secrets (${APP_SECRET_NAMES[*]})"
  secret_region=$(region)
  for i in "${!APP_SECRET_NAMES[@]}"; do
    name=${APP_SECRET_NAMES[$i]}
    # {deployment_group}: the CodeDeploy deployment group this instance is deployed by (one bundle, every environment)
    id=${APP_SECRET_IDS[$i]}
    if [[ $id == *"{deployment_group}"* ]]; then
      [ -n "${DEPLOYMENT_GROUP_NAME:-}" ] || die "secret $name ($id) names {deployment_group}, but DEPLOYMENT_GROUP_NAME is not set"
      id=${id//"{deployment_group}"/$DEPLOYMENT_GROUP_NAME}
    fi
    secrets[$name]=$(secret_value "$secret_region" "${APP_SECRET_SOURCES[$i]}" "$id") ||
      die "cannot read secret $name from ${APP_SECRET_SOURCES[$i]} $id in $secret_region"
    secret_args+=(--env "$name")
  done
  log "read ${#APP_SECRET_NAMES[@]} secret(s) in $secret_region: ${APP_SECRET_NAMES[*]}"
fi

container_exists && engine rm --force "$APP_CONTAINER" >/dev/null

args=(--detach --name "$APP_CONTAINER" --restart "$APP_RESTART_POLICY" --env-file "$APP_ENV_FILE"
  "${secret_args[@]}" --volume "$APP_LOG_DIR:$APP_CONTAINER_LOG_DIR")
for port in "${APP_PORTS[@]}"; do
  args+=(--publish "$port")
done
# The engine's path and arguments are fixed before the secrets are exported, and only in a subshell for this one
# command: `--env NAME` copies each value from the engine's environment, so none is on a command line `ps` shows
# or in a file.
run=("$(command -v "$APP_ENGINE")" run "${args[@]}" "${APP_RUN_OPTIONS[@]}" "$image" "${APP_COMMAND[@]}")
(
  for name in "${!secrets[@]}"; do
    export "$name=${secrets[$name]}"
  done
  exec "${run[@]}" >/dev/null
)
log "started $APP_CONTAINER from $image"

for _ in $(seq "$APP_START_WAIT"); do
  state=$(container_state)
  [ "$state" = running ] && exit 0
  [ "$state" = exited ] && break
  sleep 1
done
engine logs --tail 20 "$APP_CONTAINER" >&2 || true
die "$APP_CONTAINER is $(container_state), not running, after ${APP_START_WAIT}s"
