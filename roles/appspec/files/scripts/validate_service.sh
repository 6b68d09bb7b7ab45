#!/usr/bin/env bash
# ValidateService: the app's deep health check must pass; retried within a budget that fits the hook timeout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

url="http://127.0.0.1:$APP_HEALTH_PORT$APP_HEALTH_PATH"
body=""
for attempt in $(seq "$APP_HEALTH_RETRIES"); do
  if body=$(curl -fsS --max-time "$APP_HEALTH_TIMEOUT" "$url" 2>&1); then
    log "healthy after $attempt attempt(s): $url"
    exit 0
  fi
  sleep "$APP_HEALTH_INTERVAL"
done
engine logs --tail 20 "$APP_CONTAINER" >&2 || true
die "$url still failing after $APP_HEALTH_RETRIES attempts: $body"
