#!/usr/bin/env bash
# The local stack: one Apache Kafka broker (KRaft, broker and controller in one JVM)
# and one PostgreSQL cluster, as plain processes on 127.0.0.1. No Docker needed.
#
#   scripts/stack.sh up              start (or keep) both, write STACK_DIR/stack.env
#   scripts/stack.sh down [--purge]  stop both; --purge also deletes their data
#   scripts/stack.sh status          one line each; exit 0 only if both are up
#   scripts/stack.sh env             print STACK_DIR/stack.env (KEY=value, sourceable)
#
# Environment (defaults in brackets):
#   STACK_DIR [<repo>/.local/stack]  KAFKA_PORT [19092]  KAFKA_CONTROLLER_PORT [19093]
#   PG_PORT [15432]  PG_FSYNC [on]  KAFKA_HEAP [512m]  KAFKA_LIBS [<repo>/.local/kafka/libs]
#   PG_USER [binance]  PG_PASSWORD [binance]  PG_API_USER [binance_api]
#   PG_API_PASSWORD [binance_api]  PG_DATABASE [binance]
#   KAFKA_START_TIMEOUT [90]  KAFKA_STOP_TIMEOUT [15]  PG_START_TIMEOUT [30] (seconds)
#   STACK_EXTERNAL_DATABASE_URL: use this database instead of managing PostgreSQL
#   STACK_EXTERNAL_API_DATABASE_URL: its read-only URL [STACK_EXTERNAL_DATABASE_URL]
#
# Stacks with different STACK_DIR and ports coexist: the Kafka data lives in
# STACK_DIR, the PostgreSQL cluster is Debian's cluster "stack<PG_PORT>".
set -euo pipefail
shopt -s inherit_errexit

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

STACK_DIR=${STACK_DIR:-$repo/.local/stack}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_LIBS=${KAFKA_LIBS:-$repo/.local/kafka/libs}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-15}
PG_PORT=${PG_PORT:-15432}
PG_FSYNC=${PG_FSYNC:-on}
PG_START_TIMEOUT=${PG_START_TIMEOUT:-30}
PG_USER=${PG_USER:-binance}
PG_PASSWORD=${PG_PASSWORD:-binance}
PG_API_USER=${PG_API_USER:-binance_api}
PG_API_PASSWORD=${PG_API_PASSWORD:-binance_api}
PG_DATABASE=${PG_DATABASE:-binance}
external_db=${STACK_EXTERNAL_DATABASE_URL:-}

STACK_DIR=$(realpath -m -- "$STACK_DIR")
KAFKA_LIBS=$(realpath -m -- "$KAFKA_LIBS")
kafka_dir=$STACK_DIR/kafka
kafka_config=$kafka_dir/server.properties
kafka_pid_file=$STACK_DIR/kafka.pid
kafka_log=$STACK_DIR/logs/kafka.log
env_file=$STACK_DIR/stack.env
stack_marker=$STACK_DIR/.stack-dir
pg_cluster=stack$PG_PORT

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }

check_settings() {
    local name
    for name in KAFKA_PORT KAFKA_CONTROLLER_PORT PG_PORT KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT PG_START_TIMEOUT; do
        [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a number, got '${!name}'"
    done
    [[ $PG_FSYNC == on || $PG_FSYNC == off ]] || die "PG_FSYNC must be on or off, got '$PG_FSYNC'"
    [[ $KAFKA_HEAP =~ ^[0-9]+[kmgKMG]?$ ]] || die "KAFKA_HEAP must look like 512m, got '$KAFKA_HEAP'"
}

# Runs a command with its output kept aside, shown only on failure.
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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------- Kafka

# A listening socket is not a ready broker: KRaft binds its listeners early but
# answers requests only once it has caught up with the metadata log, and a Metadata
# response lists only unfenced brokers. So ask for Metadata (v4, which Kafka 4 still
# serves) and require at least one broker in the answer. Standard library only, so
# it works before the venv exists.
kafka_answers() {
    python3 - "$KAFKA_PORT" <<'PY'
import socket, struct, sys

client_id = b"stack.sh"
# Header v1: api_key 3 (Metadata), api_version 4, correlation_id, client_id;
# body v4: topics = empty array (brokers only), allow_auto_topic_creation = false.
request = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id + struct.pack(">ib", 0, 0)
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        answer = b""
        while len(answer) < 16:  # size, correlation_id, throttle_time_ms, broker count
            chunk = sock.recv(4096)
            if not chunk:
                sys.exit(1)
            answer += chunk
except OSError:
    sys.exit(1)
_, correlation_id, _, brokers = struct.unpack(">iiii", answer[:16])
sys.exit(0 if correlation_id == 7 and brokers > 0 else 1)
PY
}

# Prints the broker's pid if the pid file names a live broker of this STACK_DIR
# (a recycled pid belonging to something else does not count).
kafka_pid() {
    local pid cmdline
    [[ -f $kafka_pid_file ]] || return 1
    pid=$(<"$kafka_pid_file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"kafka.Kafka $kafka_config"* ]] || return 1
    echo "$pid"
}

kafka_write_config() {
    mkdir -p "$kafka_dir/data"
    cat >"$kafka_config.tmp" <<EOF
# Written by scripts/stack.sh on every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
# A dynamic (KIP-853) quorum formatted with --standalone; controller.quorum.voters
# would conflict with it.
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$kafka_dir/data

# One broker: every internal topic must fit on it, or group commits and
# transactions fail with NOT_ENOUGH_REPLICAS / COORDINATOR_NOT_AVAILABLE.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Topics are created explicitly by the bootstrap step, with their partition counts
# and retention; a typo in a topic name must fail, not create a new topic.
auto.create.topics.enable=false
# The default 3 s wait for more members only slows tests that start one consumer.
group.initial.rebalance.delay.ms=0
EOF
    mv "$kafka_config.tmp" "$kafka_config"
}

# The java command line for the broker ('broker') or a one-shot tool ('tool', whose
# logs go to stderr at WARN so that its stdout is only its answer).
java_cmd() {
    local -a flags=(-Djava.awt.headless=true "-Dlog4j2.configurationFile=$repo/scripts/kafka/log4j2.yaml")
    if [[ $1 == broker ]]; then
        flags+=("-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError)
    else
        flags+=(-Xmx256m -XX:TieredStopAtLevel=1 -Dkafka.log.level=WARN -Dkafka.log.target=SYSTEM_ERR)
    fi
    printf '%s\n' java "${flags[@]}" -cp "$KAFKA_LIBS/*"
}

# The controller's own endpoint is written into the metadata log at format time
# (the standalone voter set), so the storage cannot follow a changed controller port.
kafka_format() {
    local formatted_port_file=$kafka_dir/formatted-controller-port cluster_id
    local -a java
    if [[ -f $kafka_dir/data/meta.properties ]]; then
        if [[ -f $formatted_port_file && $(<"$formatted_port_file") != "$KAFKA_CONTROLLER_PORT" ]]; then
            die "Kafka storage in $kafka_dir was formatted for controller port $(<"$formatted_port_file"), not $KAFKA_CONTROLLER_PORT; use the old port or 'down --purge'"
        fi
        return
    fi
    mapfile -t java < <(java_cmd tool)
    cluster_id=$("${java[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null)
    [[ -n $cluster_id ]] || die "kafka.tools.StorageTool random-uuid printed nothing"
    quietly "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$kafka_config" \
        --standalone --ignore-formatted
    printf '%s\n' "$KAFKA_CONTROLLER_PORT" >"$formatted_port_file"
    say "kafka: formatted storage (cluster id $cluster_id)"
}

# Starts the broker in the background; kafka_wait_ready waits for it.
kafka_launch() {
    local port pid
    local -a java
    if pid=$(kafka_pid); then
        kafka_started_ms=
        return
    fi
    rm -f "$kafka_pid_file"
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        # The broker would exit with code 1 ("Address already in use"); say who to blame.
        port_open "$port" && die "127.0.0.1:$port is already in use by another process (another stack on the same ports?)"
    done
    bash "$repo/scripts/setup.sh" kafka
    kafka_write_config
    kafka_format
    mkdir -p "$(dirname "$kafka_log")"
    [[ -f $kafka_log ]] && mv -f "$kafka_log" "$kafka_log.1"
    mapfile -t java < <(java_cmd broker)
    kafka_started_ms=$(now_ms)
    # setsid: the broker gets its own session, so Ctrl-C in (or the end of) the shell or
    # test run that started it does not kill it; the next 'up' reuses it. The inner shell
    # records its own pid, which exec hands to the JVM. 9>&-: a daemon that inherited
    # the stack lock would hold it for its whole life and block every later 'up'.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$kafka_pid_file" \
        "${java[@]}" kafka.Kafka "$kafka_config" </dev/null >>"$kafka_log" 2>&1 9>&- &
    local attempt
    for attempt in {1..50}; do
        [[ -s $kafka_pid_file ]] && break
        sleep 0.1
    done
    [[ -s $kafka_pid_file ]] || die "the broker's pid file $kafka_pid_file never appeared (after $attempt tries)"
    say "kafka: starting broker on 127.0.0.1:$KAFKA_PORT (log: $kafka_log)"
}

kafka_fail() {
    printf 'stack: ERROR: %s; last lines of %s:\n' "$1" "$kafka_log" >&2
    tail -n 40 "$kafka_log" >&2 || true
    exit 1
}

# About 4 s after a clean stop, 8 s after a format. After a kill -9 about 15 s: the
# controller refuses the new registration until the dead incarnation's session
# expires (broker.session.timeout.ms, 9 s).
kafka_wait_ready() {
    local deadline pid
    deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    until kafka_answers; do
        pid=$(kafka_pid) || kafka_fail "the broker exited during start-up"
        if ((SECONDS >= deadline)); then
            kill -TERM "$pid" 2>/dev/null || true
            kafka_fail "the broker did not answer on 127.0.0.1:$KAFKA_PORT within $KAFKA_START_TIMEOUT s (stopped it)"
        fi
        sleep 0.2
    done
    if [[ -n ${kafka_started_ms:-} ]]; then
        say "kafka: ready on 127.0.0.1:$KAFKA_PORT in $(seconds_since "$kafka_started_ms") s (pid $(kafka_pid))"
    else
        say "kafka: already running on 127.0.0.1:$KAFKA_PORT (pid $(kafka_pid))"
    fi
}

kafka_stop() {
    local pid deadline
    if ! pid=$(kafka_pid); then
        rm -f "$kafka_pid_file"
        say "kafka: not running"
        return
    fi
    # SIGTERM makes the broker flush, close its logs cleanly and tell the quorum it
    # is leaving; a killed broker recovers its logs on the next start, which is slower.
    kill -TERM "$pid"
    deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        say "kafka: broker (pid $pid) ignored SIGTERM for $KAFKA_STOP_TIMEOUT s, killed it"
    else
        say "kafka: stopped (pid $pid)"
    fi
    rm -f "$kafka_pid_file"
}

# ----------------------------------------------------------------------- PostgreSQL

# The version of our existing cluster, else the newest installed server.
pg_version() {
    local conf
    for conf in /etc/postgresql/*/"$pg_cluster"/postgresql.conf; do
        [[ -f $conf ]] && { basename "$(dirname "$(dirname "$conf")")"; return; }
    done
    find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null \
        | awk -F/ '{print $5}' | sort -V | tail -n 1
}

pg_psql() {
    # psql as the postgres superuser over the Unix socket (peer authentication);
    # cd / because postgres may not be allowed into the caller's directory.
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
}

# Sets pg_config_changed to 1 when the settings file changed.
pg_configure() {
    local version=$1 conf_file durability=on
    conf_file=/etc/postgresql/$version/$pg_cluster/conf.d/stack.conf
    [[ $PG_FSYNC == off ]] && durability=off
    # Loaded through Debian's include_dir 'conf.d', so it wins over postgresql.conf and
    # is rewritten on every 'up': PG_FSYNC can change between runs.
    cat >"$conf_file.tmp" <<EOF
# Written by scripts/stack.sh on every 'up'.
listen_addresses = '127.0.0.1'
# PG_FSYNC=$PG_FSYNC. Off is for throwaway test clusters only: a crash of the machine
# (not of PostgreSQL) can then corrupt the cluster.
fsync = $durability
synchronous_commit = $durability
full_page_writes = $durability
# Sized for the consumer's bulk writes, as docker-compose.yml sizes its postgres: more of the
# tables in memory, and checkpoints (each followed by full-page images in the WAL) far apart.
# shared_buffers takes effect when the cluster next starts, not on a reload.
shared_buffers = 1GB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 15min
EOF
    pg_config_changed=1
    if [[ -f $conf_file ]] && cmp -s "$conf_file" "$conf_file.tmp"; then
        pg_config_changed=0
    fi
    mv "$conf_file.tmp" "$conf_file"
    chown postgres:postgres "$conf_file"
}

pg_up() {
    local version started rc=0 deadline output
    if ! command -v pg_createcluster >/dev/null; then
        bash "$repo/scripts/setup.sh" postgres
    fi
    version=$(pg_version)
    [[ -n $version ]] || die "no PostgreSQL server under /usr/lib/postgresql (run scripts/setup.sh)"
    started=$(now_ms)
    if [[ ! -f /etc/postgresql/$version/$pg_cluster/postgresql.conf ]]; then
        # C.UTF-8 always exists on Debian; the caller's LANG may name a locale that
        # is not generated, and initdb would then refuse to run.
        quietly pg_createcluster "$version" "$pg_cluster" -p "$PG_PORT" --locale=C.UTF-8
        say "postgres: created cluster $version/$pg_cluster"
    fi
    pg_configure "$version"
    # Exit code 2: already running.
    output=$(pg_ctlcluster "$version" "$pg_cluster" start 2>&1 9>&-) || rc=$?
    case $rc in
        0) ;;
        2) started=
            # fsync, synchronous_commit and full_page_writes take effect on a reload.
            ((pg_config_changed == 0)) || quietly pg_ctlcluster "$version" "$pg_cluster" reload 9>&- ;;
        *) printf '%s\n' "$output" >&2
            die "pg_ctlcluster $version $pg_cluster start failed (exit $rc)" ;;
    esac
    deadline=$((SECONDS + PG_START_TIMEOUT))
    until pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "/var/log/postgresql/postgresql-$version-$pg_cluster.log" >&2 || true
            die "PostgreSQL $version/$pg_cluster not ready on 127.0.0.1:$PG_PORT within $PG_START_TIMEOUT s"
        fi
        sleep 0.2
    done
    pg_create_roles
    if [[ -n $started ]]; then
        say "postgres: ready on 127.0.0.1:$PG_PORT in $(seconds_since "$started") s (cluster $version/$pg_cluster, fsync $PG_FSYNC)"
    else
        say "postgres: already running on 127.0.0.1:$PG_PORT (cluster $version/$pg_cluster)"
    fi
}

# Roles and database, idempotently. Passwords reach psql through the environment
# (\getenv), never the command line, and are bound as literals by psql's :'var'.
pg_create_roles() {
    STACK_PG_PASSWORD=$PG_PASSWORD STACK_PG_API_PASSWORD=$PG_API_PASSWORD quietly pg_psql \
        -v owner="$PG_USER" -v api="$PG_API_USER" -v db="$PG_DATABASE" <<'SQL'
\getenv owner_password STACK_PG_PASSWORD
\getenv api_password STACK_PG_API_PASSWORD
SELECT format('CREATE ROLE %I', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
ALTER ROLE :"owner" WITH LOGIN CREATEDB PASSWORD :'owner_password';
-- The API's role gets SELECT on the tables from the migration step, nothing here.
SELECT format('CREATE ROLE %I', :'api')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'api') \gexec
ALTER ROLE :"api" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'api_password';
-- CREATE DATABASE cannot run inside a DO block or function, hence \gexec.
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"owner";
SQL
}

pg_running() {
    local version=$1
    [[ -f /etc/postgresql/$version/$pg_cluster/postgresql.conf ]] \
        && pg_ctlcluster "$version" "$pg_cluster" status >/dev/null 2>&1
}

pg_down() {
    local version
    version=$(pg_version)
    if [[ -z $version || ! -f /etc/postgresql/$version/$pg_cluster/postgresql.conf ]]; then
        say "postgres: no cluster $pg_cluster"
        return
    fi
    if pg_running "$version"; then
        # Fast: disconnects clients (a forgotten consumer must not block 'down') and
        # still checkpoints, so nothing is lost.
        quietly pg_ctlcluster "$version" "$pg_cluster" stop -m fast
        say "postgres: stopped cluster $version/$pg_cluster"
    else
        say "postgres: cluster $version/$pg_cluster not running"
    fi
}

pg_purge() {
    local version
    version=$(pg_version)
    if [[ -n $version && -f /etc/postgresql/$version/$pg_cluster/postgresql.conf ]]; then
        quietly pg_dropcluster --stop "$version" "$pg_cluster"
        say "postgres: dropped cluster $version/$pg_cluster"
    fi
}

# ------------------------------------------------------------------------- commands

url_quote() { URL_PART=$1 python3 -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ["URL_PART"], safe=""))'; }

write_env() {
    local database_url api_database_url
    if [[ -n $external_db ]]; then
        database_url=$external_db
        api_database_url=${STACK_EXTERNAL_API_DATABASE_URL:-$external_db}
    else
        local host_db
        host_db="127.0.0.1:$PG_PORT/$(url_quote "$PG_DATABASE")"
        database_url="postgresql+psycopg2://$(url_quote "$PG_USER"):$(url_quote "$PG_PASSWORD")@$host_db"
        api_database_url="postgresql+psycopg2://$(url_quote "$PG_API_USER"):$(url_quote "$PG_API_PASSWORD")@$host_db"
    fi
    # Passwords inside: readable by the owner only. printf %q keeps plain values plain
    # (so docker --env-file and python-dotenv read them too) and quotes odd ones.
    (
        umask 077
        {
            printf '# Written by scripts/stack.sh up; source it or pass it as an env file.\n'
            printf 'KAFKA_BOOTSTRAP_SERVERS=%q\n' "127.0.0.1:$KAFKA_PORT"
            printf 'DATABASE_URL=%q\n' "$database_url"
            printf 'API_DATABASE_URL=%q\n' "$api_database_url"
            printf 'KAFKA_LIBS=%q\n' "$KAFKA_LIBS"
            printf 'STACK_DIR=%q\n' "$STACK_DIR"
            printf 'KAFKA_PORT=%q\n' "$KAFKA_PORT"
            printf 'PG_PORT=%q\n' "$PG_PORT"
        } >"$env_file.tmp"
    )
    mv "$env_file.tmp" "$env_file"
}

# One 'up' or 'down' at a time per STACK_DIR (two test processes may race to start it).
lock_stack_dir() {
    exec 9>"$STACK_DIR/.lock"
    flock 9
}

cmd_up() {
    if [[ -d $STACK_DIR && ! -f $stack_marker && -n $(ls -A "$STACK_DIR") ]]; then
        die "STACK_DIR $STACK_DIR exists, is not empty and was not made by this script"
    fi
    mkdir -p "$STACK_DIR"
    touch "$stack_marker"
    lock_stack_dir
    # The JVM takes seconds to start; set PostgreSQL up meanwhile.
    kafka_launch
    if [[ -n $external_db ]]; then
        say "postgres: external database (STACK_EXTERNAL_DATABASE_URL), not managed"
    else
        pg_up
    fi
    kafka_wait_ready
    write_env
    say "env: $env_file"
}

cmd_down() {
    local purge=${1:-}
    [[ -z $purge || $purge == --purge ]] || die "usage: stack.sh down [--purge]"
    if [[ -d $STACK_DIR ]]; then
        [[ -f $stack_marker ]] || die "STACK_DIR $STACK_DIR was not made by this script; not touching it"
        lock_stack_dir
    fi
    kafka_stop
    if [[ -z $external_db ]]; then
        if [[ -n $purge ]]; then pg_purge; else pg_down; fi
    fi
    if [[ -n $purge && -d $STACK_DIR ]]; then
        rm -rf -- "$STACK_DIR"
        say "purged $STACK_DIR"
    fi
}

cmd_status() {
    local ok=0 pid version
    if pid=$(kafka_pid) && kafka_answers; then
        say "kafka: up on 127.0.0.1:$KAFKA_PORT (pid $pid)"
    elif [[ -n ${pid:-} ]]; then
        say "kafka: not answering on 127.0.0.1:$KAFKA_PORT (pid $pid alive: starting or stuck)"
        ok=1
    else
        say "kafka: down"
        ok=1
    fi
    if [[ -n $external_db ]]; then
        say "postgres: external database, not managed"
    else
        version=$(pg_version)
        if [[ -n $version ]] && pg_running "$version" && pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2; then
            say "postgres: up on 127.0.0.1:$PG_PORT (cluster $version/$pg_cluster)"
        else
            say "postgres: down (cluster ${version:-?}/$pg_cluster)"
            ok=1
        fi
    fi
    return "$ok"
}

cmd_env() {
    [[ -f $env_file ]] || die "$env_file does not exist; run 'scripts/stack.sh up' first"
    cat "$env_file"
}

main() {
    local command=${1:-}
    shift || true
    check_settings
    case $command in
        up) cmd_up ;;
        down) cmd_down "$@" ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *)
            sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
            exit 2 ;;
    esac
}

main "$@"
