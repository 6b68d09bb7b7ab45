#!/usr/bin/env bash
# Place the get-pip stand-in where ansible-test looks for its cached bootstrap script.
set -euo pipefail
python=${1:?usage: install-get-pip-standin.sh PYTHON}
version=$("$python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; from types import SimpleNamespace as N; print(g(N(version="3"))["pip"])')
target="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
mkdir -p "$(dirname "$target")"
cp "$(dirname "$0")/get_pip_standin.py" "$target"
echo "get-pip stand-in for pip $version at $target"
