#!/usr/bin/env bash
# Sets up this machine and runs the whole pipeline as local processes, without Docker:
# Kafka and PostgreSQL (scripts/stack.sh), then docker-compose.yml's init, producer, consumer, api
# and replay services with their compose commands and environment. Ctrl-C stops the services; the stack
# keeps running (scripts/stack.sh down stops it).
#
#   bash scripts/run.sh          # against real Binance
#   bash scripts/run.sh --demo   # offline, against the fake exchange
#
# The api answers on http://127.0.0.1:8000 (API_HOST_PORT is not used here: it is compose's), the
# replay on ws://127.0.0.1:9444.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash scripts/setup.sh
bash scripts/stack.sh up
# The local stack's PostgreSQL is on loopback: TLS would only slow the api's queries down.
export API_DB_SSL=${API_DB_SSL:-disable}
exec .venv/bin/python scripts/compose_local.py run init producer consumer api replay \
    --stack-env "${STACK_DIR:-$repo/.local/stack}/stack.env" "$@"
