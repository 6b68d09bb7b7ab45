# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deterministic CodeDeploy bundles: the same files give byte-identical archives (and so the same S3 ETag)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import zipfile

EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def _files(source):
    """Relative paths of the regular files under ``source``, sorted, symlinks refused."""
    found = []
    for root, dirs, names in os.walk(source):
        dirs.sort()
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path):
                raise ValueError(f"src: {path} is a symlink; a bundle holds regular files only")
            found.append(os.path.relpath(path, source))
    return sorted(found)


def build_zip(source):
    """The zip archive of ``source`` as bytes: sorted entries, fixed timestamps, modes 0755 or 0644."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for relative in _files(source):
            path = os.path.join(source, relative)
            executable = os.stat(path).st_mode & stat.S_IXUSR
            entry = zipfile.ZipInfo(relative.replace(os.sep, "/"), date_time=EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 3  # unix, so the mode below is honoured by CodeDeploy's agent
            entry.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            with open(path, "rb") as handle:
                archive.writestr(entry, handle.read())
    return buffer.getvalue()


def digests(data):
    """{"md5" (the S3 ETag of a single-part upload), "sha256", "size"} of ``data``."""
    return {
        "md5": hashlib.md5(data).hexdigest(),  # nosec: an ETag, not a security use
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def write_atomic(dest, data, mode=0o644):
    """Write ``data`` to ``dest`` so that readers see the old file or the whole new one, never a part.

    The bytes go to a temporary file that ``tempfile.mkstemp`` creates (O_EXCL, an unpredictable name, mode 0600) in
    the destination's own directory, so the final ``os.replace`` is a rename within one file system: atomic, and it
    never follows a symlink someone planted at a guessable name. The file is given ``mode`` and flushed to disk
    before the rename, and the directory after it. On any failure the temporary file is removed and ``dest`` is left
    as it was.
    """
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
