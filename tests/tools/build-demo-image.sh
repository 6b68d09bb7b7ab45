#!/usr/bin/env bash
# Build the demo app image offline on top of the base image (build-image.sh): the app of
# roles/local_bluegreen/files/demo_app.py listening on 8080. Idempotent: an existing image is kept.
#   usage: build-demo-image.sh [IMAGE]       (default localhost/bluegreen-demo:1.0.0)
set -euo pipefail
image=${1:-localhost/bluegreen-demo:1.0.0}
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/tests/tools/build-image.sh"
if podman image exists "$image"; then
  echo "image $image present"
  exit 0
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$root/roles/local_bluegreen/files/demo_app.py" "$context/"
cat >"$context/Containerfile" <<'CONTAINERFILE'
FROM localhost/bluegreen-base:bookworm
COPY demo_app.py /srv/demo_app.py
ENTRYPOINT ["python3", "/srv/demo_app.py", "--host", "0.0.0.0", "--port", "8080"]
CONTAINERFILE
podman build --quiet --pull=never --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 -t "$image" "$context" >/dev/null
echo "image $image built"
