#!/usr/bin/env bash
# `docker compose up`, proven by running it: builds every image and runs docker-compose.yml's
# offline demo under podman, then checks the pipeline from outside on loopback ports
# (tests/compose/test_compose_demo.py), restarts and kills services, and takes it all down.
#
#   bash scripts/compose_check.sh          # scripts/test.sh runs this after the other tests
#   bash scripts/compose_check.sh images   # only make the images (base-images: only the bases)
#   bash scripts/compose_check.sh cli      # only build (or find cached) the docker compose CLI
#
# For a machine with no Docker engine and no image registry (only package registries): it
# installs podman, runc and debootstrap from Debian, builds the real `docker compose` v2 CLI from
# the Go module proxy (cached), runs `podman system service` on a private socket, drives the
# health checks (podman schedules them with systemd timers, and there is no systemd), and makes
# the base images locally: a Debian base (debootstrap), Python 3.11 for the Dockerfile's
# PYTHON_IMAGE, and stand-ins for apache/kafka and postgres (tests/compose/images/), which only
# the test's override file names (tests/compose/compose.podman.yml).
#
# Cached between runs on one machine: the compose binary (COMPOSE_CHECK_CACHE, default
# ~/.cache/binance-prices), the images and their build layers (podman's storage).
# Environment: COMPOSE_CHECK_API_PORT (38000), COMPOSE_CHECK_KAFKA_PORT (39092),
# COMPOSE_CHECK_PG_PORT (35432): the loopback ports the stack publishes; KAFKA_LIBS (the jars
# scripts/setup.sh fetches); COMPOSE_CHECK_HEALTHY_TIMEOUT (300 s) for every service to be
# healthy after `up`; COMPOSE_CHECK_KEEP=1 leaves the stack up (for a look; take it down with the
# `docker compose ... down -v` line it prints).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

compose_version=v2.40.3
cache=${COMPOSE_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/binance-prices}
compose_bin=$cache/docker-compose-$compose_version/docker-compose
kafka_libs=${KAFKA_LIBS:-$repo/.local/kafka/libs}
project=binance-prices-check
image_prefix=localhost/binance-prices-test
export API_HOST_PORT=${COMPOSE_CHECK_API_PORT:-38000}
export KAFKA_HOST_PORT=${COMPOSE_CHECK_KAFKA_PORT:-39092}
export PG_HOST_PORT=${COMPOSE_CHECK_PG_PORT:-35432}

say() { printf 'compose-check: %s\n' "$*"; }
die() { printf 'compose-check: ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
figure() { printf '%s\n' "$1" >>"$work/figures"; say "$1"; }

# Runs a command with its output kept in a file, shown only on failure.
quietly() {
    local out rc=0
    out=$(mktemp)
    "$@" >"$out" 2>&1 || rc=$?
    if ((rc != 0)); then
        tail -n 60 "$out" >&2
        rm -f "$out"
        die "failed (exit $rc): $*"
    fi
    rm -f "$out"
}

# ------------------------------------------------------------------------ the machine

install_packages() {
    local missing=() command package
    for command in podman:podman runc:runc debootstrap:debootstrap; do
        package=${command#*:}
        command -v "${command%%:*}" >/dev/null || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and apt-get is not available"
    say "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    quietly apt-get install -y -q -o Dpkg::Use-Pty=0 "${missing[@]}"
}

# `go install` refuses compose's module (its go.mod has exclude directives); a scratch module
# that requires it builds the same binary. About 2.5 min of CPU, so the binary is cached.
compose_cli() {
    local started scratch
    mkdir -p "$(dirname "$compose_bin")"
    # scripts/test.sh starts this build early, beside the other tests: a second caller waits.
    exec 7>"$compose_bin.lock"
    flock 7
    if [[ -x $compose_bin ]]; then
        say "docker compose $compose_version: cached ($compose_bin)"
        return
    fi
    command -v go >/dev/null || die "go is needed to build docker compose $compose_version (Go module proxy)"
    say "building docker compose $compose_version from the Go module proxy (a few minutes, once)"
    started=$(now_ms)
    scratch=$(mktemp -d)
    (
        cd "$scratch"
        export GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
        quietly go mod init compose-cli
        quietly go get "github.com/docker/compose/v2/cmd@$compose_version"
        quietly nice go build -trimpath \
            -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$compose_version" \
            -o "$compose_bin.tmp" github.com/docker/compose/v2/cmd
    )
    rm -rf "$scratch"
    mv "$compose_bin.tmp" "$compose_bin"
    figure "docker compose CLI built in $(seconds_since "$started") s"
}

# -------------------------------------------------------------------------- podman

# runc (crun fails: "cgroups in hybrid mode not supported"), cgroupfs (no systemd), no ulimits
# (the sandbox refuses RLIMIT_NOFILE/RLIMIT_NPROC), logs in files `docker compose logs` reads.
write_containers_conf() {
    cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    export CONTAINERS_CONF=$work/containers.conf
    # podman build (and the API's build endpoint) run RUN steps in a chroot: the OCI isolation
    # would set rlimits too.
    export BUILDAH_ISOLATION=chroot
}

start_podman_service() {
    local attempt
    podman system service --time=0 "unix://$work/podman.sock" >"$work/podman-service.log" 2>&1 &
    podman_service_pid=$!
    export DOCKER_HOST=unix://$work/podman.sock
    for attempt in {1..100}; do
        curl -sf --unix-socket "$work/podman.sock" http://d/_ping >/dev/null 2>&1 && return
        kill -0 "$podman_service_pid" 2>/dev/null || { cat "$work/podman-service.log" >&2; die "podman system service exited"; }
        sleep 0.1
    done
    cat "$work/podman-service.log" >&2
    die "podman system service did not answer on $work/podman.sock (after $attempt tries)"
}

# Runs every health check of the project's containers: every 2 s until a container is healthy,
# then at its own interval, never two at once for one container (a broker's check starts a JVM,
# and a pile of them would starve the broker). Checks of different containers run side by side.
health_driver() {
    local -A due interval running
    local id status now seconds
    while :; do
        now=$(date +%s)
        while IFS='|' read -r id status; do
            [[ -n $id ]] || continue
            if [[ -z ${interval[$id]:-} ]]; then
                seconds=$(podman inspect --format \
                    '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval.Seconds}}{{else}}0{{end}}' "$id" \
                    2>/dev/null || echo 0)
                interval[$id]=$(printf '%.0f' "${seconds:-0}")
            fi
            ((${interval[$id]} > 0)) || continue
            ((now >= ${due[$id]:-0})) || continue
            [[ -n ${running[$id]:-} ]] && kill -0 "${running[$id]}" 2>/dev/null && continue
            if [[ $status == *"(healthy)"* ]]; then
                due[$id]=$((now + interval[$id]))
            else
                due[$id]=$((now + 2))
            fi
            podman healthcheck run "$id" >/dev/null 2>&1 &
            running[$id]=$!
        done < <(podman ps --filter "label=com.docker.compose.project=$project" \
            --format '{{.ID}}|{{.Status}}' 2>/dev/null || true)
        sleep 1
    done
}

# ---------------------------------------------------------------------------- images

# The Debian base every other image starts from; the only one not built from a Containerfile.
# It carries the machine's own extra CA certificates (/usr/local/share/ca-certificates), which
# the ca-certificates package adds to the bundle: where an intercepting proxy stands between the
# machine and the package registries, apt and pip inside the builds need them.
debian_base() {
    local image=$image_prefix/debian:bookworm mirror started root recipe
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    recipe=$( { echo "minbase bookworm $mirror"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } \
        | sha256sum | cut -c1-16)
    if [[ $(podman image inspect --format '{{index .Labels "binance-prices.recipe"}}' "$image" 2>/dev/null) == "$recipe" ]]; then
        say "image $image: present"
        return
    fi
    started=$(now_ms)
    root=$work/debian-root
    say "debootstrap bookworm from $mirror"
    quietly debootstrap --variant=minbase bookworm "$root" "$mirror"
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
    [[ -s /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$root/etc/apt/"
    mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | quietly podman import --change 'CMD ["/bin/bash"]' \
        --change "LABEL binance-prices.recipe=$recipe" - "$image"
    rm -rf "$root"
    figure "image $image: debootstrap + import in $(seconds_since "$started") s"
}

# podman build with its layer cache: the first run builds, later runs take seconds.
build_image() {
    local image=$1 context=$2 started
    started=$(now_ms)
    quietly podman build --isolation=chroot --build-arg "BASE_IMAGE=$image_prefix/debian:bookworm" \
        -t "$image" "$context"
    figure "image $image: built in $(seconds_since "$started") s"
}

base_images() {
    local kafka_context
    debian_base
    build_image "$image_prefix/python:3.11" tests/compose/images/python
    build_image "$image_prefix/postgres:15" tests/compose/images/postgres
    # The broker's context: the stand-in's files and the jars scripts/setup.sh fetched.
    bash scripts/setup.sh kafka
    kafka_context=$work/kafka-context
    mkdir -p "$kafka_context"
    cp -a tests/compose/images/kafka/. "$kafka_context/"
    cp -a "$kafka_libs" "$kafka_context/libs"
    rm -f "$kafka_context/libs/.pom-sha256"
    cp scripts/kafka/log4j2.yaml "$kafka_context/"
    build_image "$image_prefix/kafka:4.3.1" "$kafka_context"
}

# ---------------------------------------------------------------------------- compose

compose() {
    "$compose_bin" -p "$project" -f docker-compose.yml -f tests/compose/compose.podman.yml "$@"
}

# Compose builds every service side by side, through the engine's classic build API (podman has
# no BuildKit); each image's figure is when its tag appeared in the build's output.
service_images() {
    local started line elapsed
    started=$(now_ms)
    DOCKER_BUILDKIT=0 COMPOSE_BAKE=false compose --profile demo build 2>&1 | while IFS= read -r line; do
        printf '%s\n' "$line" >>"$work/build.log"
        # podman prints each tag twice, with and without docker.io/library/.
        if [[ $line =~ Successfully\ tagged\ docker\.io/library/(binance-prices-[a-z-]+:local) ]]; then
            elapsed=$(seconds_since "$started")
            figure "image ${BASH_REMATCH[1]}: built ${elapsed} s after docker compose build began"
        fi
    done
    if ((PIPESTATUS[0] != 0)); then
        tail -n 60 "$work/build.log" >&2
        die "docker compose build failed"
    fi
    figure "every service image built in $(seconds_since "$started") s (docker compose build)"
}

image_sizes() {
    local line
    while read -r line; do
        figure "image size: $line"
    done < <(podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'binance-prices' \
        | sed 's|^docker.io/library/||' | sort)
}

# Every service's state and logs, for a failure's report (once).
show_logs() {
    [[ -z ${logs_shown:-} ]] || return 0
    logs_shown=1
    say "containers:"
    compose --profile demo --profile tools ps -a >&2 || true
    compose --profile demo logs --no-color --tail 80 >&2 || true
}

# The newest result of every failing or pending health check: what the check itself said.
show_health_checks() {
    local name
    while read -r name; do
        printf 'compose-check: health check of %s, newest result:\n' "$name" >&2
        podman inspect "$name" 2>/dev/null | python3 -c '
import json, sys
state = json.load(sys.stdin)[0]["State"]
log = (state.get("Health") or state.get("Healthcheck") or {}).get("Log") or []
if log:
    print("  exit", log[-1]["ExitCode"])
    print("\n".join("    " + line for line in log[-1]["Output"].splitlines()[-12:]))
else:
    print("  (never ran)")
' >&2 || true
    done < <(podman ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}|{{.Status}}' \
        | awk -F'|' '$2 ~ /\((starting|unhealthy)\)/ {print $1}')
}

api_has_prices() {
    local body
    body=$(curl -sf --max-time 3 "http://127.0.0.1:$API_HOST_PORT/v1/prices/latest" 2>/dev/null) || return 1
    [[ $body == *'"BTCUSDT"'* && $body == *'"ETHUSDT"'* ]]
}

# Until every container with a health check is healthy and the one-shot init has exited 0; also
# notes when the api first answers with a price of every symbol.
wait_healthy() {
    local started=$1 timeout=${COMPOSE_CHECK_HEALTHY_TIMEOUT:-300} waiting first_price= deadline
    deadline=$((SECONDS + timeout))
    while :; do
        if [[ -z $first_price ]] && api_has_prices; then
            first_price=$(seconds_since "$started")
            figure "first price of both symbols at /v1/prices/latest $first_price s after docker compose up"
        fi
        waiting=$(podman ps -a --filter "label=com.docker.compose.project=$project" \
            --format '{{.Names}}|{{.Status}}' | awk -F'|' '
                $2 ~ /^Exited/ && $1 ~ /-init-/ && $2 !~ /^Exited \(0\)/ { print "failed:", $1, $2; next }
                $2 ~ /^Exited/ && $1 !~ /-init-/ { print $1, $2; next }
                $2 ~ /\((starting|unhealthy)\)/ { print $1, $2 }
                $2 ~ /^(Created|Initialized)/ { print $1, $2 }')
        [[ -z $waiting ]] && break
        if [[ $waiting == *failed:* ]] || ((SECONDS >= deadline)); then
            show_logs
            show_health_checks
            die "not every service healthy within $timeout s: $waiting"
        fi
        sleep 1
    done
    figure "every service healthy $(seconds_since "$started") s after docker compose up"
    if [[ -z $first_price ]]; then
        until api_has_prices; do
            ((SECONDS < deadline)) || { show_logs; die "no price of both symbols at /v1/prices/latest"; }
            sleep 0.5
        done
        figure "first price of both symbols at /v1/prices/latest $(seconds_since "$started") s after docker compose up"
    fi
}

# ---------------------------------------------------------------------------- cleanup

stop_pid() {
    if [[ -n $1 ]]; then kill "$1" 2>/dev/null || true; fi
}

cleanup() {
    local rc=$?
    if [[ -n ${compose_started:-} && -z ${COMPOSE_CHECK_KEEP:-} ]]; then
        ((rc == 0)) || show_logs
        compose --profile demo --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    stop_pid "${health_driver_pid:-}"
    stop_pid "${cli_pid:-}"
    if [[ -z ${COMPOSE_CHECK_KEEP:-} || -z ${compose_started:-} ]]; then
        stop_pid "${podman_service_pid:-}"
        wait 2>/dev/null || true
        rm -rf "$work"
    else
        say "left running: DOCKER_HOST=$DOCKER_HOST CONTAINERS_CONF=$CONTAINERS_CONF $compose_bin -p $project" \
            "-f docker-compose.yml -f tests/compose/compose.podman.yml --profile demo down -v" \
            "(then kill the podman service, pid $podman_service_pid)"
    fi
    exit "$rc"
}

main() {
    local started until=${1:-}
    work=$(mktemp -d /tmp/compose-check.XXXXXX)
    trap cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    if [[ $until == cli ]]; then
        compose_cli
        return
    fi
    install_packages
    write_containers_conf
    # The CLI's build is mostly CPU, the base images mostly downloads: side by side.
    compose_cli >"$work/compose-cli.log" 2>&1 &
    cli_pid=$!
    base_images
    [[ $until == base-images ]] && return
    wait "$cli_pid" || { cat "$work/compose-cli.log" >&2; die "building the docker compose CLI failed"; }
    cat "$work/compose-cli.log"
    start_podman_service
    service_images
    image_sizes
    [[ $until == images ]] && return

    # Earlier runs that died without cleaning up.
    compose --profile demo --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
    health_driver &
    health_driver_pid=$!
    started=$(now_ms)
    compose_started=1
    say "docker compose --env-file demo.env up -d"
    compose --env-file demo.env up -d --no-build || { show_logs; die "docker compose up failed"; }
    wait_healthy "$started"

    # shellcheck source=/dev/null
    source .venv/bin/activate
    COMPOSE_CHECK_BIN=$compose_bin COMPOSE_CHECK_PROJECT=$project COMPOSE_CHECK_FIGURES=$work/figures \
        python -m pytest -p no:cacheprovider tests/compose -v || { show_logs; die "the compose checks failed"; }

    if [[ -z ${COMPOSE_CHECK_KEEP:-} ]]; then
        compose --profile demo --profile tools down -v --remove-orphans >/dev/null 2>&1
        compose_started=
        local left
        left=$(podman ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}')
        left+=$(podman volume ls --filter "label=com.docker.compose.project=$project" --format '{{.Name}}')
        [[ -z $left ]] || die "docker compose down -v left behind: $left"
        say "docker compose down -v: nothing left"
    fi
    say "figures:"
    sed 's/^/  /' "$work/figures"
}

main "$@"
