#!/bin/sh
# One-shot job (temporalio/admin-tools), run before the Temporal server on every `docker compose up`:
# brings the schemas of Temporal's two databases in the shared Postgres up to date, as Temporal's own
# role, which owns them (job `db-setup` creates both, deploy/postgres/temporal-role.sql; the role
# cannot create databases). Re-running is safe: `setup-schema -v 0.0` leaves an existing schema alone
# and `update-schema` applies only the versions a database lacks (which is also how a Temporal
# upgrade migrates its schema).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT="${DB_PORT:-5432}"

echo "waiting for Postgres at ${POSTGRES_SEEDS}:${PORT}"
tries=0
until nc -z "$POSTGRES_SEEDS" "$PORT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "Postgres did not answer" >&2; exit 1; }
  sleep 1
done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}
for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db=${pair%%:*}
  schema=${pair##*:}
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/${schema}/versioned"
  echo "database ${db} is at the current ${schema} schema"
done
