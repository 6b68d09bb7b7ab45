"""bundle.write_atomic: codedeploy_bundle's archive is written through a mkstemp file and renamed into place."""

import os
import stat

import pytest

from ansible_collections.bluegreen.aws.plugins.module_utils import bundle
from ansible_collections.bluegreen.aws.plugins.module_utils.bundle import write_atomic

OLD = b"old archive " * 1000
NEW = b"new archive " * 5000


def listing(directory):
    return sorted(os.listdir(directory))


def test_the_destination_is_replaced_by_a_rename_with_its_mode(tmp_path):
    dest = tmp_path / "web.zip"
    dest.write_bytes(OLD)
    before = dest.stat().st_ino
    with open(dest, "rb") as reader:  # a reader (an upload in progress) keeps the whole old file
        write_atomic(str(dest), NEW, 0o640)
        assert reader.read() == OLD
    assert dest.read_bytes() == NEW
    assert dest.stat().st_ino != before  # a new file renamed over the old one, not the old one rewritten
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert listing(tmp_path) == ["web.zip"]  # no temporary file left


def test_a_failure_mid_write_leaves_the_old_archive_and_no_temporary_file(tmp_path, monkeypatch):
    dest = tmp_path / "web.zip"
    dest.write_bytes(OLD)
    written = []

    def fsync_fails(fd):
        written.append(os.fstat(fd).st_size)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle.os, "fsync", fsync_fails)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(str(dest), NEW)
    assert written == [len(NEW)]  # it failed after the new bytes were written to the temporary file
    assert dest.read_bytes() == OLD
    assert listing(tmp_path) == ["web.zip"]


def test_a_failure_before_the_first_archive_leaves_nothing(tmp_path, monkeypatch):
    def failing_replace(*unused):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(bundle.os, "replace", failing_replace)
    with pytest.raises(OSError, match="I/O error"):
        write_atomic(str(tmp_path / "web.zip"), NEW)
    assert listing(tmp_path) == []


def test_the_temporary_name_is_not_predictable(tmp_path, monkeypatch):
    """A symlink planted at a guessable name (web.zip.tmp, .web.zip.tmp) is never written through."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    for name in ("web.zip.tmp", ".web.zip.tmp", "web.zip.part"):
        (tmp_path / name).symlink_to(victim)
    names = []
    real_replace = os.replace

    def recording_replace(src, dst):
        names.append(os.path.basename(src))
        return real_replace(src, dst)

    monkeypatch.setattr(bundle.os, "replace", recording_replace)
    write_atomic(str(tmp_path / "web.zip"), NEW)
    write_atomic(str(tmp_path / "web.zip"), OLD)
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "web.zip").read_bytes() == OLD
    assert len(set(names)) == 2 and all(n.startswith(".web.zip.") and n.endswith(".tmp") for n in names), names
    assert not {"web.zip.tmp", ".web.zip.tmp"} & set(names)
