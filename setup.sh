#!/usr/bin/env bash
# Create (or reuse) .venv and install Lantern into it, editable, with the test extra.
# torch goes in first: on these machines `torch==2.13.0` is the CPU wheel, while a bare `torch`
# requirement would pull a multi-GB CUDA build. An already-installed torch (e.g. a CUDA build a
# GPU user put there) is kept.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check "torch==${LANTERN_TORCH_VERSION:-2.13.0}"
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[test]"
