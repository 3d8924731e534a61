#!/usr/bin/env bash
# Everything the tests and the demo need, on a fresh Debian 12 machine as root:
# apt packages, the controller venv (.venv), the fleet's host images, and CPython's source.
# Idempotent: a second run only checks. First run: about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

PY=${OXZ_PYTHON:-python3}
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import oxzep7_deploy, ansible_runner, packaging, pytest, molecule' 2>/dev/null; then
  log "controller venv (.venv)"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
fi

if ! command -v chromium >/dev/null 2>&1; then
  log "chromium (the report's browser test renders its page headless)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi

log "test fleet: packages, podman config, host images"
bash tests/fleet/fleet.sh setup
bash tests/fleet/fleet.sh build-image
if [ -x tests/fleet/cpython.sh ] || [ -f tests/fleet/cpython.sh ]; then
  log "CPython source (from Debian's source packages, cached)"
  bash tests/fleet/cpython.sh >/dev/null
fi
log "the realistic app's packages (datasette: cp311, cp313 wheels, MarkupSafe's sdist), cached"
.venv/bin/python -m tests.fleet.wheelhouse >/dev/null
log "execution node wheels (ansible-runner, ansible-core: the controller's versions, cached)"
.venv/bin/python -m tests.fleet.exec_node >/dev/null
log "ready"
