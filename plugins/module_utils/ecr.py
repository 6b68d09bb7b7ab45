# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Release tags on an ECR image: point tags at one image digest, refusing before any write what ECR would refuse.

A tag is added by PutImage with the image's own manifest (no pull or push). A tag that already names another image
in a repository whose tags are immutable for that tag (IMMUTABLE, or IMMUTABLE_WITH_EXCLUSION without a matching
wildcard filter, or MUTABLE_WITH_EXCLUSION with one) cannot move: ECR answers ImageTagAlreadyExistsException. All
tags are checked first, so a release is either fully tagged or not tagged at all.
"""

from __future__ import annotations

import fnmatch
import re

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# BatchGetImage's acceptedMediaTypes: the values the ECR API reference lists
MANIFEST_MEDIA_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+json",
]


class TagError(Exception):
    pass


def check_digest(digest):
    if not DIGEST.match(digest or ""):
        raise TagError(f"image_digest {digest!r} is not an image digest: give sha256: and 64 lowercase hex digits")


def check_tag(tag, parameter):
    if not TAG.match(tag or ""):
        raise TagError(
            f"{parameter}: {tag!r} is not a valid image tag "
            "(letters, digits, _ . -; up to 128; not starting with . or -)"
        )


def check_input(digest, tags):
    """Errors naming the parameter, before any AWS call."""
    check_digest(digest)
    if not tags:
        raise TagError("tags is empty: give at least one tag, for example the version and <env>-current")
    for tag in tags:
        check_tag(tag, "tags")


def tag_is_immutable(repository, tag):
    """Whether ECR refuses to move ``tag`` in ``repository`` (a DescribeRepositories entry)."""
    mode = repository.get("imageTagMutability", "MUTABLE")
    immutable = mode.startswith("IMMUTABLE")
    if mode.endswith("_WITH_EXCLUSION"):
        filters = repository.get("imageTagMutabilityExclusionFilters") or []
        if any(fnmatch.fnmatchcase(tag, f.get("filter", "")) for f in filters):
            return not immutable
    return immutable


def find_image(client, repository, tag=None, digest=None, registry_id=None, **call):
    """DescribeImages' entry of the image ``tag`` (or ``digest``) names in ``repository``; None if it holds none."""
    ids = dict(registryId=registry_id) if registry_id else {}
    image_id = {"imageDigest": digest} if digest else {"imageTag": tag}
    try:
        found = client.describe_images(repositoryName=repository, imageIds=[image_id], **ids, **call)
    except client.exceptions.ImageNotFoundException:
        return None
    return (found.get("imageDetails") or [None])[0]


def tag_digest(client, repository, tag, ids, call):
    """The digest ``tag`` names now, or None."""
    image = find_image(client, repository, tag=tag, registry_id=ids.get("registryId"), **call)
    return (image or {}).get("imageDigest")


def plan_tags(client, repository, digest, tags, registry_id=None, **call):
    """Read the image's manifest and where each tag points now; return (image, {tag: current digest or None})."""
    ids = dict(registryId=registry_id) if registry_id else {}
    answer = client.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
        **ids,
        **call,
    )
    images = [found for found in answer.get("images", []) if found.get("imageId", {}).get("imageDigest") == digest]
    if not images:
        raise TagError(
            f"no image with digest {digest} in ECR repository {repository}: push it first, or fix image_digest"
        )
    return images[0], {tag: tag_digest(client, repository, tag, ids, call) for tag in tags}


def apply_tags(client, repository, digest, tags, check_mode=False, registry_id=None, **call):
    """Point every tag at ``digest``. Returns {tag: {"before": digest or None, "after": digest}} for moved tags."""
    check_input(digest, tags)
    ids = dict(registryId=registry_id) if registry_id else {}
    described = client.describe_repositories(repositoryNames=[repository], **ids, **call)["repositories"][0]
    image, current = plan_tags(client, repository, digest, tags, registry_id, **call)
    moves = {tag: dict(before=before, after=digest) for tag, before in current.items() if before != digest}
    stuck = [tag for tag, move in moves.items() if move["before"] and tag_is_immutable(described, tag)]
    if stuck:
        raise TagError(
            f"ECR repository {repository} keeps these tags immutable and they name another image: "
            + ", ".join(f"{tag} -> {current[tag]}" for tag in stuck)
            + ". A version tag is never reused (build a new version name); a moving tag such as <env>-current needs "
            "the repository's imageTagMutability IMMUTABLE_WITH_EXCLUSION with a wildcard exclusion filter for it "
            "(for example *-current)."
        )
    if not check_mode:
        for tag in moves:
            client.put_image(
                repositoryName=repository,
                imageManifest=image["imageManifest"],
                imageManifestMediaType=image.get("imageManifestMediaType") or MANIFEST_MEDIA_TYPES[0],
                imageTag=tag,
                imageDigest=digest,
                **ids,
                **call,
            )
    return moves
