"""The collection builds, installs, documents itself and runs from the installed copy."""

import json
import os
import subprocess
import sys
import tarfile

from conftest import make_group
from conftest import run_playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def tool(name, *args, cwd=None, env=None):
    proc = subprocess.run(
        [os.path.join(BIN, name), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_build_install_doc_and_run_from_installed_copy(aws, tmp_path):
    tool("ansible-galaxy", "collection", "build", ROOT, "--output-path", str(tmp_path / "dist"), cwd=ROOT)
    (tarball,) = (tmp_path / "dist").iterdir()
    assert tarball.name == "bluegreen-aws-0.1.0.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/lifecycle_action.py" in names
    assert not [
        n for n in names if n.startswith(("tests/unit", "tests/emulator", "tests/bench", ".venv", ".build", ".ci"))
    ]

    installed = tmp_path / "installed"
    tool("ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", str(installed), str(tarball))
    module = installed / "ansible_collections" / "bluegreen" / "aws" / "plugins" / "modules" / "lifecycle_action.py"
    assert module.is_file()

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    text = tool("ansible-doc", "bluegreen.aws.lifecycle_action", env=dict(env, ANSIBLE_NOCOLOR="1"))
    assert f"> MODULE bluegreen.aws.lifecycle_action ({installed}" in text
    doc = json.loads(tool("ansible-doc", "--json", "bluegreen.aws.lifecycle_action", env=env))
    doc = doc["bluegreen.aws.lifecycle_action"]
    assert doc["doc"]["short_description"].startswith("Complete Auto Scaling lifecycle actions")
    assert set(doc["doc"]["options"]) >= {"group_name", "hook_name", "health_check", "endpoint_url", "region"}
    assert "instances" in doc["return"]

    make_group(aws, "web", size=1)
    rc, results, unused_report = run_playbook(
        """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
""",
        aws.endpoint,
        tmp_path,
        env={"ANSIBLE_COLLECTIONS_PATH": str(installed)},
    )
    assert rc == 0, results
    assert results["complete"]["changed"] is False
