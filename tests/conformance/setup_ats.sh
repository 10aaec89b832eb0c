#!/usr/bin/env bash
# Install the Autobahn TestSuite (wstest, Python 2.7 only) into
# tests/conformance/.ats-venv. Used by .ci/run and by hand; idempotent.
# Exits 0 with a message when no Python 2.7 interpreter exists; the
# conformance test then skips, or fails when CI is set (tests/support/ci.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.ats-venv"
py2="${RATCHETPY_PYTHON27:-}"
if [ -z "$py2" ]; then
  for c in python2.7 "$HOME/.pyenv/versions/2.7.18/bin/python" /root/.pyenv/versions/2.7.18/bin/python; do
    # pyenv shims exist even when they cannot run: check it really is 2.7
    if "$c" -c 'import sys; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1; then
      py2="$c"; break
    fi
  done
fi
if [ -z "$py2" ]; then
  echo "setup_ats: no Python 2.7 found (set RATCHETPY_PYTHON27); tests/integration/test_conformance.py will skip, or fail with CI set"
  exit 0
fi
if [ -x "$venv/bin/wstest" ]; then
  echo "setup_ats: $venv/bin/wstest already installed"
  exit 0
fi
"$py2" -m pip install -q --disable-pip-version-check 'virtualenv<20.22' 2>&1 | grep -v -e DEPRECATION -e "WARNING: Url" -e "WARNING: Location" || true
"$py2" -m virtualenv -q "$venv"
# The suite pins its own era's stack (Twisted 19.10, autobahn 0.10.9, ...).
# The machine-wide pip constraints file is for Python 3; ignore it here.
PIP_CONSTRAINT= "$venv/bin/pip" install -q --disable-pip-version-check 'autobahntestsuite==25.10.1' 2>&1 | grep -v -e DEPRECATION -e "WARNING: Url" -e "WARNING: Location" || true
"$venv/bin/wstest" --help >/dev/null
echo "setup_ats: installed $venv/bin/wstest"
