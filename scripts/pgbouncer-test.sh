#!/usr/bin/env bash
# Starts PgBouncer in transaction pooling mode on a loopback port in front of the test
# PostgreSQL (the one scripts/postgres-test-db.sh sets up), installing Debian's package if
# it is missing, and prints the URL the PgBouncer tests read:
#
#     eval "$(scripts/postgres-test-db.sh)"
#     eval "$(scripts/pgbouncer-test.sh)"     # sets CHAT_TEST_PGBOUNCER_URL
#
# Transaction mode is what hosted PostgreSQL's pooled endpoints run: a server connection
# belongs to a client only for one transaction. The pool is kept smaller than the clients'
# pools so that clients really do share server connections. On PgBouncer 1.21 and later,
# which can track prepared statements, that tracking is turned off: the store must work
# through a pooler that cannot.
#
# Run as root (PgBouncer itself runs as the postgres user). Safe to run again: a PgBouncer
# this script started is told to reload its settings instead of being started twice.
set -euo pipefail

PORT="${CHAT_TEST_PGBOUNCER_PORT:-6433}"
DIR="${CHAT_TEST_PGBOUNCER_DIR:-/var/tmp/chat-test-pgbouncer}"
POOL_SIZE="${CHAT_TEST_PGBOUNCER_POOL_SIZE:-4}"

log() { echo "pgbouncer-test: $*" >&2; }

if [ -z "${CHAT_TEST_POSTGRES_URL:-}" ]; then
    eval "$("$(dirname "$0")/postgres-test-db.sh")"
fi
# postgres://ROLE:PASSWORD@HOST:PORT/DATABASE, as postgres-test-db.sh prints it.
if [[ ! "$CHAT_TEST_POSTGRES_URL" =~ ^postgres(ql)?://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/([^?]+)$ ]]; then
    log "CHAT_TEST_POSTGRES_URL is not of the form postgres://ROLE:PASSWORD@HOST:PORT/DATABASE"
    exit 1
fi
ROLE="${BASH_REMATCH[2]}"
PASSWORD="${BASH_REMATCH[3]}"
PG_HOST="${BASH_REMATCH[4]}"
PG_PORT="${BASH_REMATCH[5]}"
DATABASE="${BASH_REMATCH[6]}"

if ! command -v pgbouncer >/dev/null; then
    log "installing pgbouncer"
    # The package's own service is not wanted: this script runs its own instance. In a
    # container without an init system its start fails harmlessly.
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >&2
fi

VERSION="$(pgbouncer --version | head -n1 | grep -oE '[0-9]+\.[0-9]+' | head -n1)"
MAJOR="${VERSION%%.*}"
MINOR="${VERSION#*.}"

mkdir -p "$DIR"
# The password in the auth file lets PgBouncer check clients (SCRAM) and log in to
# PostgreSQL as them.
printf '"%s" "%s"\n' "$ROLE" "$PASSWORD" >"$DIR/userlist.txt"
{
    echo "[databases]"
    # Any database name is passed through, so tests can make databases of their own.
    echo "* = host=$PG_HOST port=$PG_PORT"
    echo "[pgbouncer]"
    echo "listen_addr = 127.0.0.1"
    echo "listen_port = $PORT"
    echo "unix_socket_dir ="
    echo "auth_type = scram-sha-256"
    echo "auth_file = $DIR/userlist.txt"
    echo "pool_mode = transaction"
    echo "default_pool_size = $POOL_SIZE"
    echo "max_client_conn = 500"
    # sqlx sends extra_float_digits at startup; PgBouncer refuses unknown ones otherwise.
    echo "ignore_startup_parameters = extra_float_digits"
    echo "logfile = $DIR/pgbouncer.log"
    echo "pidfile = $DIR/pgbouncer.pid"
    if [ "$MAJOR" -gt 1 ] || [ "$MINOR" -ge 21 ]; then
        echo "max_prepared_statements = 0"
    fi
} >"$DIR/pgbouncer.ini"
chown -R postgres: "$DIR"
chmod 700 "$DIR"

if [ -s "$DIR/pgbouncer.pid" ] && kill -0 "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null; then
    log "reloading the running pgbouncer $VERSION on port $PORT"
    kill -HUP "$(cat "$DIR/pgbouncer.pid")"
else
    log "starting pgbouncer $VERSION on 127.0.0.1:$PORT (transaction pooling, pool size $POOL_SIZE)"
    # PgBouncer refuses to run as root.
    runuser -u postgres -- pgbouncer -d -q "$DIR/pgbouncer.ini" >&2
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT" -d "$DATABASE"; then
        break
    fi
    sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT" -d "$DATABASE"; then
    log "pgbouncer did not accept connections on 127.0.0.1:$PORT within 30 seconds; see $DIR/pgbouncer.log"
    exit 1
fi

echo "export CHAT_TEST_PGBOUNCER_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
