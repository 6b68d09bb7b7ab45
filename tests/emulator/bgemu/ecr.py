"""ECR tag immutability as AWS applies it.

moto 5.2.5 matches ``imageTagMutabilityExclusionFilters`` as regular expressions (``*-current``, a valid AWS
wildcard filter, is an invalid regex there and fails the request) and answers a push of an immutable tag with
``ImageAlreadyExistsException``. AWS's filters are wildcards (``*`` any characters), and overwriting an immutable tag
is ``ImageTagAlreadyExistsException`` ("The specified image is tagged with a tag that already exists. The repository
is configured for tag immutability."); ``ImageAlreadyExistsException`` is for a push of the same manifest under a tag
it already has.  An image's digest is the sha256 of its manifest (moto hashes the layer digests only).
"""

import fnmatch
import hashlib
import json

from moto.core.exceptions import ServiceException
from moto.ecr.models import ECRBackend
from moto.ecr.models import Image

BASE_IMMUTABLE = {
    "MUTABLE": False,
    "IMMUTABLE": True,
    "IMMUTABLE_WITH_EXCLUSION": True,  # immutable unless a filter matches
    "MUTABLE_WITH_EXCLUSION": False,  # mutable unless a filter matches
}


class ImageTagAlreadyExistsException(ServiceException):
    code = "ImageTagAlreadyExistsException"

    def __init__(self, repository_name, tag):
        super().__init__(
            f"The image tag '{tag}' already exists in the '{repository_name}' repository and cannot be overwritten "
            "because the tag is immutable."
        )


def tag_is_immutable(repository, tag):
    mode = repository.image_tag_mutability
    base = BASE_IMMUTABLE.get(mode, False)
    if mode.endswith("_WITH_EXCLUSION"):
        filters = repository.image_tag_mutability_exclusion_filters or []
        if any(fnmatch.fnmatchcase(tag, f["filter"]) for f in filters):
            return not base
    return base


def images_tagged(repository, tag):
    return [image for image in repository.images if tag in (image.image_tags or [])]


_put_image = ECRBackend.put_image


def put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None, digest=None):
    repository = self.repositories.get(repository_name)
    if repository is not None and image_tag and tag_is_immutable(repository, image_tag):
        if any(image.image_manifest != image_manifest for image in images_tagged(repository, image_tag)):
            raise ImageTagAlreadyExistsException(repository_name, image_tag)
    return _put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype, digest)


def resolve_image_tag_mutability(self, repository, proposed_image_tag):
    """The images holding the tag (put_image above has already applied immutability)."""
    return images_tagged(repository, proposed_image_tag)


def create_digest(self):
    """An image's digest is the sha256 of its manifest's bytes, as in every registry (moto 5.2.5 hashes the joined
    layer digests, so two images with the same layers, different configs or annotations, share a digest)."""
    self._image_digest = "sha256:" + hashlib.sha256(self.image_manifest.encode("utf-8")).hexdigest()


VERSION_ANNOTATION = "org.opencontainers.image.version"


def images_env(account):
    """The stand-in engine's view of the registry: {"BGEMU_ECR_IMAGES": JSON {"<repository>@<digest>": version}} for
    every image of ``account``'s ECR repositories (all regions the emulator has used); the version is the manifest's
    org.opencontainers.image.version annotation, "" without one.  The engine pulls a digest only if it is there."""
    from moto.ecr.models import ecr_backends

    known = {}
    for backend in dict.values(ecr_backends[account]):
        for name, repository in backend.repositories.items():
            for image in repository.images:
                try:
                    manifest = json.loads(image.image_manifest)
                except (TypeError, ValueError):
                    manifest = {}
                annotations = manifest.get("annotations") if isinstance(manifest, dict) else None
                known[f"{name}@{image.get_image_digest()}"] = str((annotations or {}).get(VERSION_ANNOTATION, ""))
    return {"BGEMU_ECR_IMAGES": json.dumps(known, sort_keys=True)}


PATCHES = [
    (Image, "_create_digest", create_digest),
    (ECRBackend, "put_image", put_image),
    (ECRBackend, "_resolve_image_tag_mutability", resolve_image_tag_mutability),
]
