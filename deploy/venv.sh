#!/usr/bin/env bash
# venv.sh REQUIREMENTS VENV: makes (or refreshes) the virtualenv VENV with the pinned packages
# of REQUIREMENTS from PyPI, and prints its python path as the last line. A venv whose
# requirements file is unchanged is left alone, so repeated runs do not reach the index.
set -euo pipefail

requirements="$1"
venv="$2"
python="${PYTHON:-python3}"
name="$(basename "$0"): $venv"

if ! command -v "$python" >/dev/null 2>&1; then
	echo "$name: $python not found; install Python 3.11 or newer" >&2
	exit 1
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	echo "$venv/bin/python"
	exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
	mkdir -p "$(dirname "$venv")"
	if ! "$python" -m venv "$venv" >&2; then
		rm -rf "$venv"
		echo "$name: '$python -m venv' failed; on Debian/Ubuntu run: apt-get install python3-venv" >&2
		exit 1
	fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
