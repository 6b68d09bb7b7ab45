"""Stand-in for ansible-test's get-pip.py download, which this network cannot reach.

ansible-test runs the cached "get-pip" script with pip's install arguments to bootstrap pip in
the virtual environments it creates.  This script does the same with the pip wheel that came with
Python: ``python get_pip_X_Y.py <pip install args>``.  Where that wheel is depends on who built Python:
a Python built from source (pyenv, python.org) bundles it in ``ensurepip/_bundled``; Debian and Ubuntu
keep it in ``/usr/share/python-wheels`` (package python3-pip-whl, pulled in by python3-venv), and a
Python built with ``--with-wheel-pkg-dir`` names its directory in the ``WHEEL_PKG_DIR`` config variable.
"""

import ensurepip
import glob
import os
import re
import sys
import sysconfig

WHEEL_DIRS = (
    os.path.join(os.path.dirname(ensurepip.__file__), "_bundled"),
    getattr(ensurepip, "_WHEEL_PKG_DIR", None) or "",
    sysconfig.get_config_var("WHEEL_PKG_DIR") or "",
    "/usr/share/python-wheels",
)


def version_key(path):
    match = re.match(r"pip-([0-9.]+)-", os.path.basename(path))
    return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()


def find_pip_wheel(directories=WHEEL_DIRS):
    """The newest pip wheel in the first of ``directories`` that has one, or None."""
    for directory in directories:
        wheels = glob.glob(os.path.join(directory, "pip-*.whl")) if directory else []
        if wheels:
            return max(wheels, key=version_key)
    return None


def main(argv):
    wheel = find_pip_wheel()
    if not wheel:
        sys.exit(
            "no pip wheel found in "
            + ", ".join(d for d in WHEEL_DIRS if d)
            + "; install python3-venv (Debian/Ubuntu) or a Python with ensurepip"
        )
    sys.path.insert(0, wheel)

    from pip._internal.cli.main import main as pip_main

    # get-pip.py's own flags: they only stop it from adding setuptools/wheel, which this never adds.
    args = [arg for arg in argv if arg not in ("--no-setuptools", "--no-wheel")]
    return pip_main(["install", *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
