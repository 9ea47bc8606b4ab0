#!/usr/bin/env bash
# Machine set-up for development and CI: PostgreSQL server binaries, Chromium (for the
# web page's tests), Prometheus and promtool (for the observability tests), the Python venv, and
# the Kafka jars. Idempotent: a second run only checks.
#
#   bash scripts/setup.sh              # all steps
#   bash scripts/setup.sh kafka        # only some steps: postgres, chromium, prometheus, venv, kafka
#
# Environment: PYTHON (default python3), KAFKA_LIBS (default <repo>/.local/kafka/libs),
# STACK_EXTERNAL_DATABASE_URL (set: the postgres step is skipped).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kafka_libs=${KAFKA_LIBS:-$repo/.local/kafka/libs}
python=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# Runs a command with its output kept in a temporary file, shown only on failure.
quietly() {
    local out rc=0
    out=$(mktemp)
    "$@" >"$out" 2>&1 || rc=$?
    if ((rc != 0)); then
        cat "$out" >&2
        rm -f "$out"
        die "failed (exit $rc): $*"
    fi
    rm -f "$out"
}

have_postgres_server() {
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && command -v pg_createcluster >/dev/null
}

setup_postgres() {
    if [[ -n ${STACK_EXTERNAL_DATABASE_URL:-} ]]; then
        say "postgres: skipped (STACK_EXTERNAL_DATABASE_URL is set)"
        return
    fi
    if have_postgres_server; then
        say "postgres: server binaries present"
        return
    fi
    command -v apt-get >/dev/null || die "PostgreSQL server is missing and apt-get is not available"
    say "postgres: installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    # Debian's package creates and configures cluster <ver>/main but, without
    # systemd, leaves it stopped; scripts/stack.sh creates its own cluster.
    quietly apt-get install -y -q -o Dpkg::Use-Pty=0 postgresql
    have_postgres_server || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres"
}

# The web page's tests drive Debian's chromium through Playwright (Playwright's own browser
# download cannot reach its host, and is not needed).
have_chromium() {
    [[ -x /usr/bin/chromium ]]
}

setup_chromium() {
    if have_chromium; then
        say "chromium: present"
        return
    fi
    command -v apt-get >/dev/null || die "chromium is missing (the web page's tests need it) and apt-get is not available"
    say "chromium: installing Debian's chromium package"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    quietly apt-get install -y -q -o Dpkg::Use-Pty=0 chromium
    have_chromium || die "chromium installed but no /usr/bin/chromium"
}

# The observability tests run Debian's Prometheus on a loopback port and check the alert rules
# and dashboard queries with its promtool (no Docker needed).
have_prometheus() {
    command -v prometheus >/dev/null && command -v promtool >/dev/null
}

setup_prometheus() {
    if have_prometheus; then
        say "prometheus: present"
        return
    fi
    command -v apt-get >/dev/null || die "prometheus is missing (the observability tests need it) and apt-get is not available"
    say "prometheus: installing Debian's prometheus package (brings promtool)"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    quietly apt-get install -y -q -o Dpkg::Use-Pty=0 prometheus
    have_prometheus || die "prometheus installed but prometheus or promtool is not on PATH"
}

# The editable install maps the top-level packages that exist at install time, so
# a new package directory needs a reinstall as much as a pyproject change does.
venv_fingerprint() {
    {
        cat "$repo/pyproject.toml" "$repo/requirements/dev.lock"
        compgen -G "$repo/*/__init__.py" | sort || true
    } | sha256sum | cut -d' ' -f1
}

setup_venv() {
    local venv=$repo/.venv stamp=$repo/.venv/.setup-fingerprint fingerprint
    if [[ ! -x $venv/bin/python ]]; then
        say "venv: creating $venv"
        quietly "$python" -m venv "$venv"
    fi
    fingerprint=$(venv_fingerprint)
    if [[ -f $stamp && $(<"$stamp") == "$fingerprint" ]]; then
        say "venv: up to date"
        return
    fi
    # The pinned versions first (requirements/dev.lock, written by scripts/lock.sh), then the
    # project itself without resolving again: CI and every developer get the same packages.
    say "venv: pip install -r requirements/dev.lock, then -e ."
    rm -f "$stamp"
    quietly "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$repo/requirements/dev.lock"
    quietly "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$repo"
    printf '%s\n' "$fingerprint" >"$stamp"
}

kafka_jars_current() {
    [[ -f $kafka_libs/.pom-sha256 && $(<"$kafka_libs/.pom-sha256") == "$1" ]]
}

setup_kafka() {
    local pom=$repo/scripts/kafka/pom.xml fingerprint started
    fingerprint=$(sha256sum "$pom" | cut -d' ' -f1)
    if kafka_jars_current "$fingerprint"; then
        say "kafka: jars up to date in $kafka_libs"
        return
    fi
    command -v mvn >/dev/null || die "mvn is needed to fetch the Kafka jars"
    mkdir -p "$(dirname "$kafka_libs")"
    # Two stacks (a dev stack and a test stack) may both find the jars missing.
    exec 8>"$kafka_libs.lock"
    flock 8
    if kafka_jars_current "$fingerprint"; then
        say "kafka: jars up to date in $kafka_libs"
        return
    fi
    say "kafka: fetching jars from Maven Central into $kafka_libs"
    started=$(now_ms)
    # Fetched beside the final directory and swapped in, so an interrupted fetch never
    # leaves a half class path that looks complete.
    fetch_dir=$(mktemp -d "$kafka_libs.tmp.XXXXXX")
    trap 'rm -rf "$fetch_dir"' EXIT
    quietly mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$fetch_dir"
    printf '%s\n' "$fingerprint" >"$fetch_dir/.pom-sha256"
    chmod 755 "$fetch_dir"
    rm -rf "$kafka_libs"
    mv -T "$fetch_dir" "$kafka_libs"
    say "kafka: $(find "$kafka_libs" -name '*.jar' | wc -l) jars fetched in $(seconds_since "$started") s"
}

main() {
    local steps=("$@") step
    ((${#steps[@]})) || steps=(postgres chromium prometheus venv kafka)
    for step in "${steps[@]}"; do
        case $step in
            postgres | chromium | prometheus | venv | kafka) "setup_$step" ;;
            *) die "unknown step '$step' (expected: postgres, chromium, prometheus, venv, kafka)" ;;
        esac
    done
}

main "$@"
