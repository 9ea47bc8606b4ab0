#!/bin/sh
# Runs once, on the postgres container's first start: the api's login role, which the init
# service grants read-only access to every table.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v api_password="$PG_API_PASSWORD" <<'SQL'
CREATE ROLE binance_api LOGIN PASSWORD :'api_password';
SQL
