#!/usr/bin/env bash
# The store conformance suite against a real PostgreSQL started on
# 127.0.0.1:15432 for this test only (tests/store/pg.sh).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pg.sh"

if ! pg_start 15432; then not_ok "postgres starts"; finish; fi
ok "postgres started (pid $PG_PID)"
check "create test database" pg_createdb rtcd_test
export PATH="$PG_BIN:$PATH"
if RTCD_TEST_PG_URL="$PG_URL_BASE/rtcd_test" "$STORE_SUITE" >"$T/suite.out" 2>&1; then
    ok "store conformance suite on postgres ($(grep -c '\[       OK \]' "$T/suite.out") tests)"
else
    not_ok "store conformance suite on postgres" "$(grep -E 'FAIL|ERROR|LINE' "$T/suite.out" | head -20)"
fi
pid=$PG_PID
pg_stop
if kill -0 "$pid" 2>/dev/null; then
    not_ok "postgres stopped"
else
    ok "postgres stopped"
fi
finish
