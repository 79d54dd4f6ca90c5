#!/usr/bin/env bash
# The long fault soak: every simulator fault at once plus a server rate limit
# below the daemon's rate, over CONTACTS contacts, one `run --until-idle`;
# nothing dialed twice, nothing lost, Retry-After never violated
# (tests/harnesses/soak.rs says exactly what is checked and how).
#
#   scripts/soak.sh [CONTACTS]                 # default 20000
#
# Environment: SEED (default: the current time, printed), CARGO_TEST_FLAGS
# (e.g. --release), IDLE_SECS (bound on the run; default scales with CONTACTS).
set -euo pipefail
cd "$(dirname "$0")/.."
contacts="${1:-20000}"
seed="${SEED:-$(date +%s)}"
echo "fault soak: $contacts contacts, seed $seed (repeat with SEED=$seed)"
export DIALERD_SOAK_CONTACTS="$contacts" DIALERD_SOAK_SEED="$seed"
export DIALERD_SOAK_IDLE_SECS="${IDLE_SECS:-$((300 + contacts / 10))}"
# shellcheck disable=SC2086
exec cargo test ${CARGO_TEST_FLAGS:-} --test harnesses -- soak:: --nocapture --test-threads=1
