#!/usr/bin/env bash
# BeforeInstall: the engine answers, and the directories the container mounts exist.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

engine version >/dev/null 2>&1 || die "$APP_ENGINE does not answer: is the Docker service running?"
install -d -m 0755 "$APP_LOG_DIR"
install -d -m 0750 "$(dirname "$APP_ENV_FILE")"
log "engine ready, $APP_LOG_DIR present"
