"""The execution environment: `ansible-builder create` builds the context offline, and the collection declares its own
Python and system dependencies so any team's EE that includes it gets boto3/botocore."""

import os
import shutil
import subprocess
import sys
import tarfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def run(*args, cwd=None):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_ansible_builder_create_writes_a_context_with_the_collections_and_boto3(tmp_path):
    # the definition and its files, as `make ee` lays them out, outside the checkout
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), tmp_path)
    shutil.copytree(os.path.join(ROOT, "ee"), tmp_path / "ee")
    run(f"{BIN}/ansible-galaxy", "collection", "build", ROOT, "--output-path", str(tmp_path / ".build" / "ee-dist"))
    context = tmp_path / "context"
    run(
        f"{BIN}/ansible-builder",
        "create",
        "--file",
        str(tmp_path / "execution-environment.yml"),
        "--context",
        str(context),
        "--output-filename",
        "Containerfile",
    )
    build = context / "_build"
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    names = [c["name"] for c in galaxy["collections"]]
    assert {"amazon.aws", "community.aws"} <= set(names)
    (ours,) = [c for c in galaxy["collections"] if c.get("type") == "file"]
    # the tarball the galaxy stage installs is in the context, at the path requirements.yml names
    tarball = build / "collections" / "bluegreen-aws-0.1.0.tar.gz"
    assert ours["name"] == "/build/collections/bluegreen-aws-0.1.0.tar.gz" and tarball.is_file()
    with tarfile.open(tarball) as tar:
        shipped = tar.getnames()
    assert {"requirements.txt", "bindep.txt", "meta/execution-environment.yml"} <= set(shipped)
    assert "execution-environment.yml" not in shipped and not [n for n in shipped if n.startswith("ee/")]
    python = (build / "requirements.txt").read_text().split()
    assert "boto3==1.44.5" in python and "botocore==1.44.5" in python
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-core==2.19.14" in containerfile and "ansible-runner==2.4.3" in containerfile
    assert "introspect.py introspect" in containerfile


def test_the_collection_declares_its_dependencies_for_any_execution_environment(tmp_path):
    """What ansible-builder's introspection (run inside every EE build) finds in this collection."""
    tree = tmp_path / "ansible_collections"
    (tree / "bluegreen").mkdir(parents=True)
    os.symlink(ROOT, tree / "bluegreen" / "aws")
    out = yaml.safe_load(run(f"{BIN}/ansible-builder", "introspect", "--sanitize", str(tmp_path)).split("\n", 1)[1])
    ours = [line for line in out["python"] if line.endswith("from collection bluegreen.aws")]
    assert sorted(line.split()[0] for line in ours) == ["boto3>=1.34.0", "botocore>=1.34.0"]
    assert [line for line in out["system"] if line.endswith("from collection bluegreen.aws")]
    meta = yaml.safe_load(open(os.path.join(ROOT, "meta", "execution-environment.yml")))
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
