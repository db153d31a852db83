#!/usr/bin/env bash
# Runs once, when the postgres volume is first initialised (the official image executes every
# script in /docker-entrypoint-initdb.d). It gives Temporal and Winback a role each:
#   temporal: may create databases; the temporal-schema job creates `temporal` and
#             `temporal_visibility` with it and owns them.
#   winback:  owns the app database `winback`, kept apart from Temporal's.
# Passwords come from the environment of the postgres service. Changing them later means
# ALTER ROLE by hand: this script does not run again on an existing volume.
set -Eeo pipefail

psql --no-psqlrc -v ON_ERROR_STOP=1 \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  --set=temporal_password="${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}" \
  --set=winback_password="${WINBACK_DB_PASSWORD:?WINBACK_DB_PASSWORD must be set}" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE winback LOGIN PASSWORD :'winback_password';
CREATE DATABASE winback OWNER winback;
SQL
