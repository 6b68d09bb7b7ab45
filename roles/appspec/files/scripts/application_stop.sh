#!/usr/bin/env bash
# ApplicationStop: stop and remove the app's container. Runs the previous revision's copy of this script;
# nothing to stop is not an error, so it is safe on a first deployment and after any failure.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

if container_exists; then
  log "stopping $APP_CONTAINER (grace ${APP_STOP_TIMEOUT}s)"
  engine stop --time "$APP_STOP_TIMEOUT" "$APP_CONTAINER" >/dev/null || true
  engine rm --force "$APP_CONTAINER" >/dev/null
else
  log "no container $APP_CONTAINER: nothing to stop"
fi
