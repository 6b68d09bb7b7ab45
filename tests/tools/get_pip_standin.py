"""Stand-in for ansible-test's get-pip.py download, which this network cannot reach.

ansible-test runs the cached "get-pip" script with pip's install arguments to bootstrap pip in
the virtual environments it creates.  This script does the same with the pip wheel bundled in the
standard library's ``ensurepip``: ``python get_pip_X_Y.py <pip install args>``.
"""

import ensurepip
import glob
import os
import sys

wheels = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
if not wheels:
    sys.exit("ensurepip has no bundled pip wheel; install the python3-venv / ensurepip package")
sys.path.insert(0, wheels[0])

from pip._internal.cli.main import main  # noqa: E402

# get-pip.py's own flags: they only stop it from adding setuptools/wheel, which this never adds.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", *args]))
