#!/bin/sh
# One-shot job (temporalio/admin-tools): creates Temporal's two databases on PostgreSQL and brings
# their schemas up to the version this admin-tools image ships. Every step is idempotent
# (`create` ignores an existing database, `setup-schema -v 0.0` keeps a newer version,
# `update-schema` applies only what is missing), so it runs on every `docker compose up` and is
# also the upgrade step when TEMPORAL_VERSION is raised. Same steps as Temporal's own compose
# sample (temporalio/samples-server, compose/scripts/setup-postgres.sh).
set -eu

: "${POSTGRES_SEEDS:=postgres}"
: "${DB_PORT:=5432}"
: "${POSTGRES_USER:=temporal}"
: "${POSTGRES_PWD:?POSTGRES_PWD must be set}"
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
export SQL_PASSWORD="$POSTGRES_PWD"  # temporal-sql-tool reads the password from here

schema_dir=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

attempt=0
until nc -z -w 2 "$POSTGRES_SEEDS" "$DB_PORT"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "PostgreSQL at $POSTGRES_SEEDS:$DB_PORT is not reachable" >&2
    exit 1
  fi
  sleep 2
done

setup() {
  db=$1
  versioned=$2
  echo "Temporal schema: database $db"
  sql_tool --db "$db" create
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$versioned"
}

setup "$DBNAME" "$schema_dir/temporal/versioned"
setup "$VISIBILITY_DBNAME" "$schema_dir/visibility/versioned"
echo "Temporal schema is up to date"
