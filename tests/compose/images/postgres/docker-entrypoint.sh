#!/bin/bash
# The official image's start-up, reduced to what docker-compose.yml relies on: as root, hand the
# data directory to postgres and continue as postgres; on an empty data directory, initdb with
# POSTGRES_USER/POSTGRES_PASSWORD, create POSTGRES_DB, run /docker-entrypoint-initdb.d/* against
# a server on the Unix socket only, then start the real server with the given command.
set -euo pipefail

if [[ ${1:-} != postgres ]]; then
    exec "$@"
fi

if [[ $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export POSTGRES_USER POSTGRES_DB

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
        echo "docker-entrypoint: POSTGRES_PASSWORD is not set (the database would accept no TCP login)" >&2
        exit 1
    fi
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 --locale=C.UTF-8 --encoding=UTF8 >/dev/null
    printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p 5432" start >/dev/null
    if [[ $POSTGRES_DB != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
            -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
    fi
    for file in /docker-entrypoint-initdb.d/*; do
        [[ -e $file ]] || continue
        case $file in
            *.sh)
                echo "docker-entrypoint: running $file"
                if [[ -x $file ]]; then "$file"; else . "$file"; fi ;;
            *.sql)
                echo "docker-entrypoint: running $file"
                psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$file" ;;
            *) echo "docker-entrypoint: ignoring $file" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "docker-entrypoint: initialised $PGDATA"
fi

exec "$@"
