#!/usr/bin/env bash
# AfterInstall: log in to ECR when asked (region and account from the variables or IMDSv2), pull the image by its
# immutable tag or digest, write the env file. Pulling an image already present is a no-op.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

image=$(image_ref)
if [ "$APP_ECR_LOGIN" = true ]; then
  registry=${image%%/*}
  log "logging in to $registry"
  aws ecr get-login-password --region "$(region)" | engine login --username AWS --password-stdin "$registry" >/dev/null
fi
if engine image inspect "$image" >/dev/null 2>&1; then
  log "image $image present"
else
  log "pulling $image"
  engine pull --quiet "$image" >/dev/null
fi
umask 077
cp "$HOOK_DIR/app.env" "$APP_ENV_FILE.tmp"
mv -f "$APP_ENV_FILE.tmp" "$APP_ENV_FILE"
log "env file $APP_ENV_FILE written"
