#!/usr/bin/env bash
# Shared by every hook script of the bundle: settings from release.env, logging, IMDSv2, the container engine.
# Each hook sources this file; nothing here changes the host by itself.
set -euo pipefail

HOOK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "$HOOK_DIR/release.env"

log() {
  printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${LIFECYCLE_EVENT:-$(basename "$0" .sh)}" "$*" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

engine() {
  "$APP_ENGINE" "$@"
}

# IMDSv2 only: a session token first (launch templates of this collection require tokens).
imds() {
  local token
  token=$(curl -fsS -X PUT --max-time 2 -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
    "$APP_IMDS_ENDPOINT/latest/api/token") ||
    die "IMDSv2: no token from $APP_IMDS_ENDPOINT (hooks run on the host; is IMDS enabled with tokens?)"
  curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$APP_IMDS_ENDPOINT/$1"
}

identity_field() {
  imds latest/dynamic/instance-identity/document | sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1
}

region() {
  if [ -n "$APP_REGION" ]; then echo "$APP_REGION"; else identity_field region; fi
}

account() {
  if [ -n "$APP_ACCOUNT_ID" ]; then echo "$APP_ACCOUNT_ID"; else identity_field accountId; fi
}

# The image reference: the registry (with {account} and {region} filled in), the repository, then the digest or tag.
image_ref() {
  local registry=$APP_REGISTRY
  if [[ $registry == *"{account}"* || $registry == *"{region}"* ]]; then
    registry=${registry//\{account\}/$(account)}
    registry=${registry//\{region\}/$(region)}
  fi
  local ref=${registry:+$registry/}$APP_REPOSITORY
  if [ -n "$APP_IMAGE_DIGEST" ]; then echo "$ref@$APP_IMAGE_DIGEST"; else echo "$ref:$APP_IMAGE_TAG"; fi
}

container_exists() {
  engine container inspect "$APP_CONTAINER" >/dev/null 2>&1
}

container_state() {
  engine container inspect --format '{{.State.Status}}' "$APP_CONTAINER" 2>/dev/null || echo absent
}

# One secret's value, read with the instance role's credentials: secret_value REGION ssm|secretsmanager ID.
# Only names and IDs are on the aws command line; the value goes to stdout (trailing newlines are dropped).
secret_value() {
  local region=$1 source=$2 id=$3 out
  case $source in
    ssm)
      # GetParameters answers an unknown name in InvalidParameters, not with an error: "<invalid count>:<value>"
      out=$(aws ssm get-parameters --region "$region" --names "$id" --with-decryption --output text \
        --query "join('', [to_string(length(InvalidParameters)), ':', Parameters[0].Value || ''])") || return 1
      [ "${out%%:*}" = 0 ] || { log "SSM parameter $id: not found"; return 1; }
      ;;
    secretsmanager)
      # "<is binary>:<SecretString>"; a binary secret cannot be an environment variable
      out=$(aws secretsmanager get-secret-value --region "$region" --secret-id "$id" --output text \
        --query "join('', [to_string(SecretString == null), ':', SecretString || ''])") || return 1
      [ "${out%%:*}" = false ] || { log "secret $id: binary, not a SecretString"; return 1; }
      ;;
    *)
      log "unknown secret source $source"
      return 1
      ;;
  esac
  printf '%s' "${out#*:}"
}
