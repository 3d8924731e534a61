#!/usr/bin/env bash
# The demo: sets everything up (tests/setup.sh), then a real canary upgrade of the sample app on
# a local 3-host fleet from Python 3.11 to 3.13.5, status, and rollback. First run: ~6 minutes
# (packages, host images, the CPython build); later runs reuse all of it. KEEP_FLEET=1 keeps the
# fleet up afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
exec .venv/bin/python -m tests.demo
