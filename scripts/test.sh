#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: lint, types, unit tests, then the integration
# tests on a real Kafka and a real PostgreSQL of their own (test ports, so a running dev stack or
# anything else on 9092/5432 is left alone). Extra arguments go to pytest.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh tests/unit -x   # a part
#
# KEEP_STACK=1 leaves the test stack running afterwards (faster reruns).
# A whole run (no arguments) ends with the compose check: every image built and
# docker-compose.yml's offline demo run under podman (scripts/compose_check.sh); COMPOSE_CHECK=0
# leaves it out.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash scripts/setup.sh

compose_check=
if (($# == 0)) && [[ ${COMPOSE_CHECK:-1} != 0 ]]; then
    compose_check=1
    # The compose check's docker compose CLI takes minutes of CPU to build once per machine:
    # built at the lowest priority beside the other tests, it is ready when the check starts.
    # In a session of its own, so that a failed run stops the whole build (go and its compilers).
    mkdir -p .local
    setsid nice -n 19 bash scripts/compose_check.sh cli >.local/compose-cli.log 2>&1 &
    compose_cli_build=$!
fi

# TEST_* move the test stack elsewhere, e.g. to run a second checkout's tests beside this one's.
export STACK_DIR=${TEST_STACK_DIR:-$repo/.local/test-stack}
export KAFKA_PORT=${TEST_KAFKA_PORT:-29092} KAFKA_CONTROLLER_PORT=${TEST_KAFKA_CONTROLLER_PORT:-29093}
export PG_PORT=${TEST_PG_PORT:-25432} PG_FSYNC=off
export STACK_ENV_FILE="$STACK_DIR/stack.env"
cleanup() {
    if [[ -n ${compose_cli_build:-} ]] && kill -0 "$compose_cli_build" 2>/dev/null; then
        kill -- "-$compose_cli_build" 2>/dev/null || true
    fi
    if [[ -z ${KEEP_STACK:-} ]]; then
        bash scripts/stack.sh down
    fi
}
trap cleanup EXIT
bash scripts/stack.sh up

# shellcheck source=/dev/null
source .venv/bin/activate
echo "test: ruff"
ruff check .
ruff format --check --quiet .
echo "test: mypy"
mypy .
echo "test: pytest"
python -m pytest "$@"
if [[ -n $compose_check ]]; then
    echo "test: compose"
    # The test stack's broker and database are not needed any more: their CPU and memory are.
    [[ -n ${KEEP_STACK:-} ]] || bash scripts/stack.sh down
    bash scripts/compose_check.sh
elif (($# == 0)); then
    echo "test: compose: left out (COMPOSE_CHECK=0)"
fi
