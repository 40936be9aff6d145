#!/usr/bin/env bash
# Starts the local PostgreSQL 15 cluster (creating it if there is none) and makes sure a test
# role and database exist, then prints the URL the PostgreSQL tests and benchmark read:
#
#     eval "$(scripts/postgres-test-db.sh)"    # sets CHAT_TEST_POSTGRES_URL
#
# Run as root. Safe to run again: every step checks before it acts.
# The role and password are throwaway values for a test cluster on loopback only.
set -euo pipefail

VERSION="${PG_VERSION:-15}"
CLUSTER="${PG_CLUSTER:-main}"
ROLE="${CHAT_TEST_PG_ROLE:-chat_test}"
PASSWORD="${CHAT_TEST_PG_PASSWORD:-chat_test}"
DATABASE="${CHAT_TEST_PG_DATABASE:-chat_test}"

log() { echo "postgres-test-db: $*" >&2; }

if ! pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2}' | grep -qx "$VERSION $CLUSTER"; then
    log "creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" >&2
fi

PORT="$(pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')"

if ! pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}' | grep -q online; then
    log "starting cluster $VERSION/$CLUSTER on port $PORT"
    # A systemd redirect would fail in a container without systemd, so start it directly.
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
        break
    fi
    sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    log "the cluster did not accept connections on 127.0.0.1:$PORT within 30 seconds"
    exit 1
fi

psql_admin() {
    # runuser rather than su: no login shell or PAM session is needed.
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"
}

psql_admin -d postgres -v role="$ROLE" -v password="$PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')
\gexec
-- Keep the password as documented even if the role was made earlier with another one.
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
\gexec
SQL

psql_admin -d postgres -v role="$ROLE" -v db="$DATABASE" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL

echo "export CHAT_TEST_POSTGRES_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
