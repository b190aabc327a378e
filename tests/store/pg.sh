# tests/store/pg.sh — start and stop a throw-away PostgreSQL server for a test
# (sourced after tests/lib.sh). PostgreSQL refuses to run as root, so initdb and
# postgres run as the unprivileged user "postgres" (runuser) in a folder under
# $T made accessible to it; the server listens on 127.0.0.1:PORT only, with
# trust authentication, fsync off (test data), and is stopped by its PID.

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PG_USER=${PG_USER:-postgres}

# pg_start PORT — sets PG_URL_BASE (postgresql://rtcd@127.0.0.1:PORT) and PG_PID.
pg_start() {
    local port=$1
    if [ -z "$PG_BIN" ] || ! id "$PG_USER" >/dev/null 2>&1; then
        echo "pg_start: PostgreSQL binaries or user '$PG_USER' missing"; return 1
    fi
    PG_DIR="$T/pg"
    mkdir -p "$PG_DIR"
    chmod 755 "$T"
    chown "$PG_USER" "$PG_DIR"
    local run=()
    [ "$(id -u)" -eq 0 ] && run=(runuser -u "$PG_USER" --)
    if ! "${run[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U rtcd -E UTF8 --locale=C \
        --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        echo "initdb failed:"; tail -5 "$PG_DIR/initdb.log"; return 1
    fi
    "${run[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -k "$PG_DIR" -h 127.0.0.1 -p "$port" \
        -c fsync=off -c full_page_writes=off -c synchronous_commit=off \
        >"$PG_DIR/server.log" 2>&1 &
    local launcher=$! i
    track "$launcher"
    for i in $(seq 1 100); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
        sleep 0.1
    done
    if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        echo "postgres did not start:"; tail -5 "$PG_DIR/server.log"; return 1
    fi
    PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
    track "$PG_PID"
    PG_PORT=$port
    PG_URL_BASE="postgresql://rtcd@127.0.0.1:$port"
}

# pg_createdb NAME — creates a database on the server started by pg_start.
pg_createdb() {
    "$PG_BIN/psql" -q -X "$PG_URL_BASE/postgres" -c "CREATE DATABASE $1" >/dev/null
}

# pg_stop — fast shutdown of the server by its PID; waits up to 10 s.
pg_stop() {
    [ -n "${PG_PID:-}" ] || return 0
    kill -INT "$PG_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$PG_PID" 2>/dev/null || break
        sleep 0.1
    done
    PG_PID=
}
