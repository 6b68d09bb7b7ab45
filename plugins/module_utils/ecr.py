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
import json
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


# The repository itself: tag mutability with exclusion filters, scan on push, lifecycle policy and tags.
# community.aws.ecs_ecr knows only MUTABLE and IMMUTABLE (and sets one of them on every run) and takes no tags, so it
# cannot keep version tags immutable while <env>-current moves.
MUTABILITIES = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
EXCLUSION_FILTER = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")  # the API reference's pattern; the type is WILDCARD
MAX_EXCLUSION_FILTERS = 5


def check_repository_input(mutability, exclusion_filters):
    """Errors naming the parameter, before any AWS call."""
    filters = exclusion_filters or []
    if mutability and mutability.endswith("_WITH_EXCLUSION"):
        if not filters:
            raise TagError(
                f"exclusion_filters is empty but image_tag_mutability is {mutability.lower()}: give the wildcard "
                "filters of the tags that are excepted (for example *-current), or choose mutable or immutable"
            )
    elif filters:
        raise TagError(
            f"exclusion_filters is set but image_tag_mutability is {(mutability or 'not set').lower()}: filters apply "
            "only to immutable_with_exclusion or mutable_with_exclusion"
        )
    if len(filters) > MAX_EXCLUSION_FILTERS:
        raise TagError(f"exclusion_filters has {len(filters)} filters: ECR takes at most {MAX_EXCLUSION_FILTERS}")
    for value in filters:
        if not EXCLUSION_FILTER.match(value or ""):
            raise TagError(
                f"exclusion_filters: {value!r} is not a wildcard filter (1 to 128 of letters, digits, . _ - and *)"
            )


def normalize_lifecycle_policy(policy):
    """The policy as ECR keeps it: rulePriority and countNumber are integers (a Jinja template before ansible-core
    2.19 gives the string "30"; ECR refuses it, and it would never compare equal to what ECR returns)."""
    if policy is None:
        return None
    policy = json.loads(json.dumps(policy))
    for rule in policy.get("rules") or []:
        if isinstance(rule, dict):
            if isinstance(rule.get("rulePriority"), str) and rule["rulePriority"].isdigit():
                rule["rulePriority"] = int(rule["rulePriority"])
            selection = rule.get("selection")
            if isinstance(selection, dict) and isinstance(selection.get("countNumber"), str):
                if selection["countNumber"].isdigit():
                    selection["countNumber"] = int(selection["countNumber"])
    return policy


def planned_repository(name, want, current):
    """What the repository will be once ``want`` is applied (check mode's diff), in describe_repository's shape."""
    after = dict(
        current
        or dict(
            name=name,
            image_tag_mutability="MUTABLE",
            exclusion_filters=[],
            scan_on_push=False,
            lifecycle_policy=None,
            tags={},
        )
    )
    if want.get("image_tag_mutability"):
        after["image_tag_mutability"] = want["image_tag_mutability"]
        after["exclusion_filters"] = sorted(set(want.get("exclusion_filters") or []))
    if want.get("scan_on_push") is not None:
        after["scan_on_push"] = want["scan_on_push"]
    if want.get("lifecycle_policy") is not None:
        after["lifecycle_policy"] = want["lifecycle_policy"]
    if want.get("tags") is not None:
        kept = {} if want.get("purge_tags", True) else dict(after["tags"])
        after["tags"] = dict(kept, **want["tags"])
    return after


def describe_repository(client, name, registry_id=None, **call):
    """The repository's settings as this module compares them, or None: {arn, uri, mutability, exclusion_filters,
    scan_on_push, lifecycle_policy (parsed, or None), tags}."""
    ids = dict(registryId=registry_id) if registry_id else {}
    try:
        found = client.describe_repositories(repositoryNames=[name], **ids, **call)["repositories"][0]
    except client.exceptions.RepositoryNotFoundException:
        return None
    try:
        policy = client.get_lifecycle_policy(repositoryName=name, **ids, **call).get("lifecyclePolicyText")
    except client.exceptions.LifecyclePolicyNotFoundException:
        policy = None
    tags = client.list_tags_for_resource(resourceArn=found["repositoryArn"], **call).get("tags") or []
    return dict(
        name=found["repositoryName"],
        arn=found["repositoryArn"],
        uri=found.get("repositoryUri", ""),
        registry_id=found.get("registryId", ""),
        image_tag_mutability=found.get("imageTagMutability", "MUTABLE"),
        exclusion_filters=sorted(f["filter"] for f in found.get("imageTagMutabilityExclusionFilters") or []),
        scan_on_push=bool((found.get("imageScanningConfiguration") or {}).get("scanOnPush")),
        lifecycle_policy=json.loads(policy) if policy else None,
        tags={t["Key"]: t["Value"] for t in tags},
    )


def _filters(values):
    return [dict(filter=value, filterType="WILDCARD") for value in values]


def reconcile_repository(client, name, want, current, check_mode=False, registry_id=None, **call):
    """Make the repository what ``want`` says (keys left None are not managed). Returns the calls made (or that check
    mode would make), in order. ``want``: image_tag_mutability, exclusion_filters, scan_on_push, lifecycle_policy
    (dict), tags (dict), purge_tags."""
    ids = dict(registryId=registry_id) if registry_id else {}
    mutability, filters = want.get("image_tag_mutability"), sorted(set(want.get("exclusion_filters") or []))
    actions = []
    if current is None:
        create = dict(repositoryName=name, encryptionConfiguration={"encryptionType": "AES256"}, **ids)
        if mutability:
            create["imageTagMutability"] = mutability
            if filters:
                create["imageTagMutabilityExclusionFilters"] = _filters(filters)
        if want.get("scan_on_push") is not None:
            create["imageScanningConfiguration"] = {"scanOnPush": want["scan_on_push"]}
        if want.get("tags"):
            create["tags"] = [dict(Key=k, Value=v) for k, v in sorted(want["tags"].items())]
        actions.append(("create_repository", create))
    else:
        if mutability and (mutability, filters) != (current["image_tag_mutability"], current["exclusion_filters"]):
            put = dict(repositoryName=name, imageTagMutability=mutability, **ids)
            if filters:
                put["imageTagMutabilityExclusionFilters"] = _filters(filters)
            actions.append(("put_image_tag_mutability", put))
        if want.get("scan_on_push") is not None and want["scan_on_push"] != current["scan_on_push"]:
            scanning = dict(repositoryName=name, imageScanningConfiguration={"scanOnPush": want["scan_on_push"]}, **ids)
            actions.append(("put_image_scanning_configuration", scanning))
        if want.get("tags") is not None:
            add = {k: v for k, v in want["tags"].items() if current["tags"].get(k) != v}
            drop = sorted(set(current["tags"]) - set(want["tags"])) if want.get("purge_tags", True) else []
            if add:
                tags = [dict(Key=k, Value=v) for k, v in sorted(add.items())]
                actions.append(("tag_resource", dict(resourceArn=current["arn"], tags=tags)))
            if drop:
                actions.append(("untag_resource", dict(resourceArn=current["arn"], tagKeys=drop)))
    policy = want.get("lifecycle_policy")
    if policy is not None and policy != (current or {}).get("lifecycle_policy"):
        text = json.dumps(policy, sort_keys=True)
        actions.append(("put_lifecycle_policy", dict(repositoryName=name, lifecyclePolicyText=text, **ids)))
    if not check_mode:
        for method, arguments in actions:
            getattr(client, method)(**arguments, **call)
    return actions
