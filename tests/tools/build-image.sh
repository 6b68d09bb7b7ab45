#!/usr/bin/env bash
# Build the test base image offline: Debian bookworm minbase with python3, from Debian's apt mirror
# (debootstrap), imported into podman.  No registry is needed.  Idempotent: an existing image is kept.
#   usage: build-image.sh [IMAGE [SUITE [PACKAGES]]]
#          (default localhost/bluegreen-base:bookworm, the suite from the tag, packages python3)
set -euo pipefail
image=${1:-localhost/bluegreen-base:bookworm}
suite=${2:-${image##*:}}
packages=${3:-python3}
if podman image exists "$image"; then
  echo "image $image present"
  exit 0
fi
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $suite from $mirror"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >/dev/null
tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$image" >/dev/null
echo "image $image built"
