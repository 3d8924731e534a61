#!/usr/bin/env bash
# The test command: sets everything up (tests/setup.sh), then runs the whole suite,
# unit and end-to-end on the real podman fleet. Extra arguments go to pytest.
# The fast subset without a fleet: .venv/bin/python -m pytest -m "not e2e"
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
export OXZ_REQUIRE_FLEET=1   # on this machine the fleet must work: e2e tests fail, never skip
set +e
.venv/bin/python -m pytest --durations=25 "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "no tests ran" >&2; exit 1; }
exit "$rc"
