#!/bin/sh
# Installs gx-gateway from a source tree into a fresh virtual environment, non-editable.
# The one install step shared by the Dockerfile (RUN) and the test suite
# (tests/packaging/test_install.py runs this very script on a fresh clone), so what the
# container gets is what CI has exercised.
#
#   usage: packaging/install.sh VENV [SOURCE]     (SOURCE defaults to the current folder)
#   PYTHON=python3.11 packaging/install.sh ...    (the interpreter that makes the venv)
set -eu
venv=${1:?usage: packaging/install.sh VENV [SOURCE]}
src=${2:-.}
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --quiet "$src"
"$venv/bin/gx-gateway" check
