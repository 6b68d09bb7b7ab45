"""tests/tools/get_pip_standin.py finds the pip wheel wherever the Python's builder put it (issue 16)."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STANDIN = os.path.join(ROOT, "tests", "tools", "get_pip_standin.py")
spec = importlib.util.spec_from_file_location("get_pip_standin", STANDIN)
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)


def test_a_debian_python_keeps_the_wheel_in_usr_share_python_wheels(tmp_path):
    bundled, debian = tmp_path / "ensurepip" / "_bundled", tmp_path / "python-wheels"
    bundled.mkdir(parents=True)  # Debian ships ensurepip without its _bundled wheels
    debian.mkdir()
    for name in ("pip-9.0.1-py2.py3-none-any.whl", "pip-23.0.1-py3-none-any.whl", "setuptools-66.1.1-py3-none-any.whl"):
        (debian / name).touch()
    assert standin.find_pip_wheel([str(bundled), "", str(debian)]) == str(debian / "pip-23.0.1-py3-none-any.whl")


def test_the_bundled_wheel_of_a_python_built_from_source_comes_first(tmp_path):
    bundled, debian = tmp_path / "_bundled", tmp_path / "python-wheels"
    bundled.mkdir()
    debian.mkdir()
    (bundled / "pip-24.0-py3-none-any.whl").touch()
    (debian / "pip-23.0.1-py3-none-any.whl").touch()
    assert standin.find_pip_wheel([str(bundled), str(debian)]) == str(bundled / "pip-24.0-py3-none-any.whl")


def test_no_wheel_anywhere_is_none(tmp_path):
    assert standin.find_pip_wheel([str(tmp_path), ""]) is None


@pytest.mark.parametrize("python", [sys.executable, "/usr/bin/python3"], ids=["venv-python", "debian-python"])
def test_the_standin_runs_pip_from_the_wheel_of_this_python_and_of_debians(python):
    proc = subprocess.run([python, STANDIN, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "install [options] <requirement specifier>" in proc.stdout
