#!/usr/bin/env bash
# A shared MLflow tracking server for the pipeline: SQLite backend store + artifacts proxied through the server.
#
#   tools/mlflow_server.sh start [--port N] [--dir DIR] [--workers N] [--timeout S] [--host ADDR]
#                                [--allowed-hosts H1,H2]
#   tools/mlflow_server.sh stop [--dir DIR]
#   tools/mlflow_server.sh status [--dir DIR]
#
# start  runs `mlflow server` in the background on HOST:PORT (HOST 127.0.0.1 unless --host, e.g. the address a
#        teammate's machine reaches; PORT 5001, or $MLFLOW_SERVER_PORT), waits
#        until GET /health answers (default 90 s, or $MLFLOW_SERVER_START_TIMEOUT), writes the PID to
#        DIR/mlflow-server.pid and prints the one line to evaluate:
#            export MLFLOW_TRACKING_URI=http://127.0.0.1:5001
#        so `eval "$(tools/mlflow_server.sh start)"` points this shell at it. Everything else goes to stderr.
#        If the server does not come up, it is killed and the end of its log is shown.
#        A server reached under another name than 127.0.0.1/localhost answers 403 unless that name is in
#        --allowed-hosts (MLflow's DNS-rebinding guard), e.g. --host 10.0.0.2 --allowed-hosts 10.0.0.2:5001.
# stop   kills the server named by DIR/mlflow-server.pid (its whole process group: the mlflow CLI and the
#        uvicorn workers it spawned) and removes the PID file.
#
# DIR (default <project root>/.mlflow-server, or $MLFLOW_SERVER_DIR) holds:
#   mlflow-server.db   the backend store (runs, params, metrics, tags)       --backend-store-uri sqlite:///...
#   artifacts/         every run's artifacts                                  --artifacts-destination ...
#   mlflow-server.log  the server's stdout and stderr
#   mlflow-server.pid  the PID (also the process-group id) of the running server
#   mlflow-server.port the port it listens on
# In MLflow 3 `--serve-artifacts` is the default: new experiments get the artifact root mlflow-artifacts:/, so
# clients upload and list artifacts over HTTP through this server and never need access to DIR themselves.
set -euo pipefail

export MLFLOW_DISABLE_TELEMETRY=true   # nothing the project runs may phone home
export DO_NOT_TRACK=true

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
PORT="${MLFLOW_SERVER_PORT:-5001}"
DIR="${MLFLOW_SERVER_DIR:-$ROOT/.mlflow-server}"
WORKERS="${MLFLOW_SERVER_WORKERS:-2}"        # uvicorn workers; MLflow's default of 4 is heavy on a small machine
TIMEOUT="${MLFLOW_SERVER_START_TIMEOUT:-90}"  # seconds to wait for /health
ALLOWED_HOSTS=""

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() { echo "mlflow_server.sh: $*" >&2; exit 1; }

# The project's venv when there is one, else whatever `mlflow` is on PATH ($MLFLOW_BIN overrides both).
mlflow_bin() {
    if [[ -n "${MLFLOW_BIN:-}" ]]; then echo "$MLFLOW_BIN"
    elif [[ -x "$ROOT/.venv/bin/mlflow" ]]; then echo "$ROOT/.venv/bin/mlflow"
    elif command -v mlflow >/dev/null; then command -v mlflow
    else die "mlflow not found: run 'make setup' first (or set MLFLOW_BIN)"
    fi
}

# True when GET <url> answers 2xx within 2 s.
http_ok() {
    if command -v curl >/dev/null; then
        curl --silent --fail --max-time 2 --output /dev/null "$1"
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()' "$1" \
            >/dev/null 2>&1
    fi
}

# True when something accepts TCP connections on HOST:$1.
port_in_use() { (exec 3<>"/dev/tcp/$LOCAL/$1") 2>/dev/null; }

# True when $1 is a live process whose command line mentions mlflow (guards against a recycled PID).
is_our_server() {
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q mlflow
}

# SIGTERM the process group, wait up to 15 s, then SIGKILL what is left.
kill_group() {
    local pid=$1
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    echo "mlflow_server.sh: server $pid ignored SIGTERM for 15 s; sending SIGKILL" >&2
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

# The running server ($pid), in words on stderr starting with $1, and the line to eval on stdout.
announce_running() {
    local port
    port="$(cat "$PORTFILE" 2>/dev/null || echo "$PORT")"
    echo "$1 (pid $pid) on http://$LOCAL:$port, store $DIR" >&2
    echo "export MLFLOW_TRACKING_URI=http://$LOCAL:$port"
}

cmd="${1:-}"
[[ -n "$cmd" ]] || usage
shift
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) PORT="${2:?--port needs a value}"; shift 2 ;;
        --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
        --workers) WORKERS="${2:?--workers needs a value}"; shift 2 ;;
        --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
        --host) HOST="${2:?--host needs a value}"; shift 2 ;;
        --allowed-hosts) ALLOWED_HOSTS="${2:?--allowed-hosts needs a value}"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "mlflow_server.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$PORT'"
# Where this script itself reaches the server (a wildcard bind answers on loopback), and that name stays allowed.
LOCAL="$HOST"
[[ "$HOST" == "0.0.0.0" || "$HOST" == "::" ]] && LOCAL=127.0.0.1
[[ -n "$ALLOWED_HOSTS" ]] && ALLOWED_HOSTS="$ALLOWED_HOSTS,$LOCAL:$PORT,$LOCAL"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"   # absolute: the store URI and the PID file must not depend on the caller's cwd
PIDFILE="$DIR/mlflow-server.pid"
PORTFILE="$DIR/mlflow-server.port"
LOG="$DIR/mlflow-server.log"
pid="$(cat "$PIDFILE" 2>/dev/null || true)"

case "$cmd" in
start)
    if is_our_server "$pid"; then
        announce_running "MLflow server already running"
        exit 0
    fi
    rm -f "$PIDFILE" "$PORTFILE"   # stale: the process it named is gone
    # Fail now rather than let /health be answered by someone else's server on the same port.
    port_in_use "$PORT" && die "port $PORT on $HOST is already in use; pick another with --port N"

    MLFLOW="$(mlflow_bin)"
    mkdir -p "$DIR/artifacts"
    echo "Starting MLflow server on http://$HOST:$PORT (store $DIR/mlflow-server.db, log $LOG)" >&2
    # setsid: the server leads its own process group (so `stop` also reaches the uvicorn workers) and outlives
    # this shell. The inner bash writes its own PID, then execs mlflow, so the PID file names the server itself.
    # GenAI job execution (huey consumers) is off: this project logs classic runs only.
    # shellcheck disable=SC2016  # $$ and $@ are the inner bash's own, unexpanded on purpose
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
        "$MLFLOW" server \
        --backend-store-uri "sqlite:///$DIR/mlflow-server.db" \
        --artifacts-destination "$DIR/artifacts" \
        --serve-artifacts \
        --host "$HOST" --port "$PORT" --workers "$WORKERS" \
        ${ALLOWED_HOSTS:+--allowed-hosts "$ALLOWED_HOSTS"} \
        >"$LOG" 2>&1 </dev/null &

    deadline=$((SECONDS + TIMEOUT))
    while :; do
        pid="$(cat "$PIDFILE" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && http_ok "http://$LOCAL:$PORT/health"; then
            break
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "mlflow_server.sh: the MLflow server exited before answering /health. End of $LOG:" >&2
            tail -n 40 "$LOG" >&2
            rm -f "$PIDFILE"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "mlflow_server.sh: the MLflow server did not answer http://$LOCAL:$PORT/health within" \
                 "${TIMEOUT}s; stopping it. End of $LOG:" >&2
            tail -n 40 "$LOG" >&2
            [[ -n "$pid" ]] && kill_group "$pid"
            rm -f "$PIDFILE"
            exit 1
        fi
        sleep 0.5
    done
    echo "$PORT" >"$PORTFILE"
    echo "MLflow server up (pid $pid). UI: http://$LOCAL:$PORT   stop: $0 stop --dir $DIR" >&2
    echo "export MLFLOW_TRACKING_URI=http://$LOCAL:$PORT"
    ;;
stop)
    if [[ -z "$pid" ]]; then
        echo "No MLflow server PID file in $DIR: nothing to stop" >&2
        exit 0
    fi
    if is_our_server "$pid"; then
        kill_group "$pid"
        kill -0 "$pid" 2>/dev/null && die "server $pid is still alive"
        echo "MLflow server $pid stopped" >&2
    else
        echo "MLflow server $pid was not running (stale PID file removed)" >&2
    fi
    rm -f "$PIDFILE" "$PORTFILE"
    ;;
status)
    if is_our_server "$pid"; then
        announce_running "MLflow server running"
    else
        echo "No MLflow server running for $DIR" >&2
        exit 1
    fi
    ;;
*)
    usage ;;
esac
