#!/bin/sh
# Runs dashboard_units_test.mjs with node (tools/setup.sh installs nodejs).
command -v node >/dev/null 2>&1 || { echo "node is missing: run bash tools/setup.sh" >&2; exit 1; }
here="$TEST_SRCDIR/$TEST_WORKSPACE"
export DASHBOARD_ASSETS="$here/server/dashboard/assets"
exec node "$here/tests/dashboard/dashboard_units_test.mjs"
