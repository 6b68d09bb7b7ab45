#!/usr/bin/env bash
# ApplicationStart: run the container (name, ports, env file, restart policy, log volume) and wait until it is
# running. A container already running this image is left alone; any other one is replaced.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

image=$(image_ref)
if [ "$(container_state)" = running ] &&
  [ "$(engine container inspect --format '{{.Config.Image}}' "$APP_CONTAINER")" = "$image" ]; then
  log "$APP_CONTAINER already runs $image"
  exit 0
fi
container_exists && engine rm --force "$APP_CONTAINER" >/dev/null

args=(--detach --name "$APP_CONTAINER" --restart "$APP_RESTART_POLICY" --env-file "$APP_ENV_FILE"
  --volume "$APP_LOG_DIR:$APP_CONTAINER_LOG_DIR")
for port in "${APP_PORTS[@]}"; do
  args+=(--publish "$port")
done
engine run "${args[@]}" "${APP_RUN_OPTIONS[@]}" "$image" "${APP_COMMAND[@]}" >/dev/null
log "started $APP_CONTAINER from $image"

for _ in $(seq "$APP_START_WAIT"); do
  state=$(container_state)
  [ "$state" = running ] && exit 0
  [ "$state" = exited ] && break
  sleep 1
done
engine logs --tail 20 "$APP_CONTAINER" >&2 || true
die "$APP_CONTAINER is $(container_state), not running, after ${APP_START_WAIT}s"
