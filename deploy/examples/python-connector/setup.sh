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

# A venv whose requirements file changed is refreshed; an up-to-date one is left alone, so
# repeated test runs do not reach the package index.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	echo "$venv/bin/python"
	exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
	mkdir -p "$(dirname "$venv")"
	if ! "$python" -m venv "$venv" >&2; then
		rm -rf "$venv"
		echo "setup.sh: '$python -m venv' failed; on Debian/Ubuntu run: apt-get install python3-venv" >&2
		exit 1
	fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
