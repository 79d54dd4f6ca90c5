#!/usr/bin/env bash
# The long crash harness: `dialerd run` killed with SIGKILL ROUNDS times at
# seeded random instants (50-800 ms after each start) while it dials through
# a faulty simulator, then `run --until-idle`; the simulator's journal must
# agree with the database (tests/harnesses/crash.rs says exactly what is checked).
#
#   scripts/crash-harness.sh [ROUNDS]          # default 100 kills
#
# Environment: SEED (default: the current time, printed so a run can be
# repeated), CONTACTS (default 40 per round, so work is in flight at every
# kill), CARGO_TEST_FLAGS (e.g. --release).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-100}"
seed="${SEED:-$(date +%s)}"
contacts="${CONTACTS:-$((rounds * 40))}"
echo "crash harness: $rounds kills, $contacts contacts, seed $seed (repeat with SEED=$seed)"
export DIALERD_CRASH_KILLS="$rounds" DIALERD_CRASH_CONTACTS="$contacts" DIALERD_CRASH_SEED="$seed"
export DIALERD_CRASH_IDLE_SECS="${IDLE_SECS:-$((300 + contacts / 10))}"
# shellcheck disable=SC2086
exec cargo test ${CARGO_TEST_FLAGS:-} --test harnesses -- crash:: --nocapture --test-threads=1
