#!/usr/bin/env bash
# Creates the example connector's virtualenv under .lethe/cache and installs its requirements.
# Prints the venv's python path as the last line, for LETHE_PYTHON.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${LETHE_PYTHON_VENV:-$root/.lethe/cache/python-connector-venv}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
	echo "setup.sh: $python not found; install Python 3.11 or newer" >&2
	exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
	echo "setup.sh: $python is $("$python" -V 2>&1); the example needs Python 3.11 or newer" >&2
	exit 1
fi

exec "$root/deploy/venv.sh" "$here/requirements.txt" "$venv"
