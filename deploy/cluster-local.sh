#!/usr/bin/env bash
# A CloudPilot cluster on this machine, for people without Docker: one redis-server and
# three `cloudpilot serve` nodes, all on loopback, plus a few simulated routers.
#
#   deploy/cluster-local.sh              start, print how to use it, stop all on Ctrl-C
#   deploy/cluster-local.sh start -d     start and return (stop later with `stop`)
#   deploy/cluster-local.sh stop         stop everything this script started
#   deploy/cluster-local.sh status       each process and each node's /health/
#   deploy/cluster-local.sh start-node N start node N again (e.g. after `kill -9`)
#   deploy/cluster-local.sh stop-redis   stop Redis (the nodes answer 503 meanwhile)
#   deploy/cluster-local.sh start-redis  start Redis again on the same data (AOF)
#
# Settings (environment):
#   CLOUDPILOT_CLUSTER_DIR  state, logs and PID files (default /tmp/cloudpilot-cluster);
#                           `start` empties it first, but only if this script created it
#   CLOUDPILOT_BIN          use this binary instead of building target/release/cloudpilot
#   NODES=3  NODE_BASE_PORT=8001  REDIS_PORT=6390  SIM_ROUTERS=3  SIM_BASE_PORT=18728
#   (SIM_ROUTERS=0: no simulator)
#
# Everything listens on 127.0.0.1 only. Processes are stopped by the PIDs recorded in
# CLOUDPILOT_CLUSTER_DIR, and only after checking that each PID still runs what this
# script started.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${CLOUDPILOT_CLUSTER_DIR:-/tmp/cloudpilot-cluster}
NODES=${NODES:-3}
NODE_BASE_PORT=${NODE_BASE_PORT:-8001}
REDIS_PORT=${REDIS_PORT:-6390}
SIM_ROUTERS=${SIM_ROUTERS:-3}
SIM_BASE_PORT=${SIM_BASE_PORT:-18728}
SIM_PASSWORD=sim-demo-password
MARKER=.cloudpilot-cluster
READY_SECS=60

say() { printf '%s\n' "$*"; }
die() {
  printf 'cluster-local: %s\n' "$*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH. $2"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The PID recorded for $1 when that process is alive and still the one this script
# started (its command line matches the extended regex in $DIR/$name.tag: this cluster's
# directory or port), else nothing.
live_pid() {
  local name=$1 pid
  [ -f "$DIR/$name.pid" ] || return 0
  pid=$(cat "$DIR/$name.pid" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/cmdline" ] && [ -f "$DIR/$name.tag" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE -e "$(cat "$DIR/$name.tag")"; then
    echo "$pid"
  fi
}

# Starts "$@" in its own session (so Ctrl-C in this terminal reaches only this script,
# which then stops everything in order), logging to $DIR/$name.log; records its PID.
spawn() {
  local name=$1 tag=$2
  shift 2
  printf '%s' "$tag" >"$DIR/$name.tag"
  rm -f "$DIR/$name.pid"
  # The child writes its own PID, then becomes the program (exec keeps the PID).
  # shellcheck disable=SC2016 # $$ and $@ belong to the child shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$DIR/$name.pid" "$@" \
    >>"$DIR/$name.log" 2>&1 </dev/null &
  # Not a job of this shell: no "Killed" notice when it is killed on purpose.
  disown $!
  for _ in $(seq 50); do
    [ -s "$DIR/$name.pid" ] && return 0
    sleep 0.1
  done
  die "$name did not start; see $DIR/$name.log"
}

# Sends SIGTERM to $1 (if it is ours and alive), waits up to $2 s, then SIGKILL.
stop_one() {
  local name=$1 grace=$2 pid
  pid=$(live_pid "$name")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((grace * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "  $name (pid $pid) did not stop within ${grace}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  say "  stopped $name (pid $pid)"
  rm -f "$DIR/$name.pid"
}

node_port() { echo $((NODE_BASE_PORT + $1 - 1)); }

wait_health() {
  local name=$1 port=$2 pid
  for _ in $(seq $((READY_SECS * 5))); do
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health/" 2>/dev/null; then
      return 0
    fi
    pid=$(live_pid "$name")
    if [ -z "$pid" ]; then
      say "cluster-local: $name exited during start-up; last lines of $DIR/$name.log:" >&2
      tail -n 20 "$DIR/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  die "$name not ready on 127.0.0.1:$port within ${READY_SECS}s; see $DIR/$name.log"
}

start_redis() {
  [ -z "$(live_pid redis)" ] || die "Redis already running (pid $(live_pid redis))"
  port_busy "$REDIS_PORT" && die "port 127.0.0.1:$REDIS_PORT is in use; set REDIS_PORT"
  mkdir -p "$DIR/redis"
  # AOF with fsync on every write: nothing Redis acknowledged is lost in a crash.
  # (redis-server rewrites its command line to "redis-server 127.0.0.1:PORT".)
  spawn redis "redis.*[: ]$REDIS_PORT( |\$)" "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" \
    --protected-mode yes --requirepass "$REDIS_PASSWORD" --dir "$DIR/redis" \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction --save ''
  for _ in $(seq 100); do
    if [ "$(REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
      say "  redis    127.0.0.1:$REDIS_PORT  pid $(live_pid redis)  (AOF in $DIR/redis)"
      return 0
    fi
    [ -n "$(live_pid redis)" ] || break
    sleep 0.1
  done
  tail -n 20 "$DIR/redis.log" >&2 || true
  die "redis-server did not come up on 127.0.0.1:$REDIS_PORT; see $DIR/redis.log"
}

start_node() {
  local n=$1 port
  port=$(node_port "$n")
  [ -z "$(live_pid "node$n")" ] || die "node$n already running (pid $(live_pid "node$n"))"
  port_busy "$port" && die "port 127.0.0.1:$port is in use; set NODE_BASE_PORT"
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
  CLOUDPILOT__STORE__BACKEND=redis \
    CLOUDPILOT__STORE__REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0" \
    CLOUDPILOT__AUTH__JWT_SECRET="$JWT_SECRET" \
    CLOUDPILOT__SECRETS__MASTER_KEY="$MASTER_KEY" \
    CLOUDPILOT__SERVER__NODE_NAME="node$n" \
    spawn "node$n" "$DIR/node$n" "$BIN" serve --listen "127.0.0.1:$port" \
    --data-dir "$DIR/node$n"
}

start_sim() {
  local last=$((SIM_BASE_PORT + SIM_ROUTERS - 1)) p
  for p in $(seq "$SIM_BASE_PORT" "$last"); do
    port_busy "$p" && die "port 127.0.0.1:$p is in use; set SIM_BASE_PORT or SIM_ROUTERS=0"
  done
  spawn sim "--listen-base 127.0.0.1:$SIM_BASE_PORT" "$BIN" sim --routers "$SIM_ROUTERS" \
    --listen-base "127.0.0.1:$SIM_BASE_PORT" --password "$SIM_PASSWORD"
  for p in $(seq 50); do
    port_busy "$last" && break
    [ -n "$(live_pid sim)" ] || die "the simulator exited; see $DIR/sim.log"
    sleep 0.1
  done
  say "  sim      127.0.0.1:$SIM_BASE_PORT-$last  pid $(live_pid sim)  (user admin, password $SIM_PASSWORD)"
}

stop_all() {
  local n jobs=()
  say "stopping (nodes first, so they can leave the cluster while Redis is up)"
  for n in $(seq "$NODES"); do
    stop_one "node$n" 20 &
    jobs+=($!)
  done
  wait "${jobs[@]}"
  stop_one sim 5
  stop_one redis 10
  say "stopped; logs kept in $DIR"
}

find_binary() {
  if [ -n "${CLOUDPILOT_BIN:-}" ]; then
    [ -x "$CLOUDPILOT_BIN" ] || die "CLOUDPILOT_BIN=$CLOUDPILOT_BIN is not an executable file"
    BIN=$(cd "$(dirname "$CLOUDPILOT_BIN")" && pwd)/$(basename "$CLOUDPILOT_BIN")
    return
  fi
  need cargo "Install Rust (rustup), or set CLOUDPILOT_BIN to a built cloudpilot binary."
  say "building (cargo build --release; the first build takes several minutes)"
  (cd "$REPO" && cargo build --release --bin cloudpilot) || die "cargo build failed"
  BIN=$REPO/target/release/cloudpilot
}

any_running() {
  local name
  for name in redis sim $(seq -f 'node%g' "$NODES"); do
    [ -n "$(live_pid "$name")" ] && return 0
  done
  return 1
}

cmd_start() {
  local detach=0 n
  case "${1:-}" in
    -d | --detach) detach=1 ;;
    "") ;;
    *) die "unknown option for start: $1" ;;
  esac
  REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
  [ -n "$REDIS_SERVER" ] ||
    die "redis-server not found on PATH. Install it (Debian/Ubuntu: apt-get install -y redis-server) or set REDIS_SERVER=/path/to/redis-server."
  need redis-cli "It comes with redis-server (Debian/Ubuntu: apt-get install -y redis-tools)."
  need curl "Install curl."
  need setsid "It is part of util-linux."
  need openssl "Install openssl (used to generate this cluster's secrets)."
  if [ -d "$DIR" ]; then
    [ -f "$DIR/$MARKER" ] ||
      die "$DIR exists and was not created by this script; set CLOUDPILOT_CLUSTER_DIR to another path"
    if any_running; then
      die "a cluster is already running from $DIR; run: $0 stop"
    fi
  fi
  # Every port free before anything starts.
  port_busy "$REDIS_PORT" && die "port 127.0.0.1:$REDIS_PORT is in use; set REDIS_PORT"
  for n in $(seq "$NODES"); do
    port_busy "$(node_port "$n")" && die "port 127.0.0.1:$(node_port "$n") is in use; set NODE_BASE_PORT"
  done
  find_binary

  rm -rf "$DIR"
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  touch "$DIR/$MARKER"
  # One set of secrets for the whole cluster: every node must share them.
  (
    umask 077
    printf 'REDIS_PASSWORD=%s\nJWT_SECRET=%s\nMASTER_KEY=%s\n' "$(openssl rand -hex 16)" \
      "$(openssl rand -hex 32)" "$(openssl rand -hex 32)" >"$DIR/cluster.env"
  )
  printf '%s\n' "$BIN" >"$DIR/bin"
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
  # Room for many router sessions per node, as far as this shell allows.
  ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

  if [ "$detach" = 0 ]; then
    trap 'trap - INT TERM EXIT; echo; stop_all; exit 0' INT TERM
    trap 'stop_all' EXIT
  else
    # On a failed start, stop what did start.
    trap 'stop_all' EXIT
  fi

  say "starting in $DIR"
  start_redis
  for n in $(seq "$NODES"); do start_node "$n"; done
  for n in $(seq "$NODES"); do
    wait_health "node$n" "$(node_port "$n")"
    say "  node$n    http://127.0.0.1:$(node_port "$n")  pid $(live_pid "node$n")  (log $DIR/node$n.log)"
  done
  [ "$SIM_ROUTERS" -gt 0 ] && start_sim
  print_usage
  if [ "$detach" = 1 ]; then
    trap - EXIT
    say "running in the background; stop with: $0 stop"
    return 0
  fi
  say "running; Ctrl-C stops everything"
  watch_processes
}

# Reports each process of the cluster that goes away (e.g. a node killed to try failover)
# or comes back (start-node, start-redis).
watch_processes() {
  local name pid
  declare -A seen=()
  while true; do
    for name in redis $(seq -f 'node%g' "$NODES"); do
      pid=$(live_pid "$name")
      if [ -n "$pid" ] && [ "${seen[$name]:-}" = down ]; then
        say "[$(date +%T)] $name is running again (pid $pid)"
      elif [ -z "$pid" ] && [ "${seen[$name]:-}" = up ]; then
        say "[$(date +%T)] $name is not running"
      fi
      seen[$name]=${pid:+up}
      seen[$name]=${seen[$name]:-down}
    done
    sleep 1
  done
}

print_usage() {
  local n last
  last=$(node_port "$NODES")
  cat <<EOF

CloudPilot cluster is up: $NODES nodes on 127.0.0.1:$NODE_BASE_PORT-$last sharing Redis on 127.0.0.1:$REDIS_PORT.
Any node answers any request. Try:
  curl -s http://127.0.0.1:$NODE_BASE_PORT/health/
  curl -s http://127.0.0.1:$NODE_BASE_PORT/users/register/ -H 'Content-Type: application/json' \\
    -d '{"username":"alice","password":"correct-horse-9","email":"alice@example.com"}'
EOF
  if [ "$SIM_ROUTERS" -gt 0 ]; then
    say "Simulated routers: host 127.0.0.1, ports $SIM_BASE_PORT-$((SIM_BASE_PORT + SIM_ROUTERS - 1)), username admin, password $SIM_PASSWORD"
  fi
  say "PIDs: $DIR/<name>.pid   logs: $DIR/<name>.log   (README.md, \"Many nodes\", walks through failover)"
  say ""
}

cmd_status() {
  local name pid n
  [ -f "$DIR/$MARKER" ] || die "no cluster in $DIR"
  for name in redis sim $(seq -f 'node%g' "$NODES"); do
    pid=$(live_pid "$name")
    if [ -n "$pid" ]; then
      printf '%-6s running, pid %s\n' "$name" "$pid"
    else
      printf '%-6s not running\n' "$name"
    fi
  done
  for n in $(seq "$NODES"); do
    printf 'node%s /health/: %s\n' "$n" \
      "$(curl -sS --max-time 2 "http://127.0.0.1:$(node_port "$n")/health/" 2>&1 || true)"
  done
}

main() {
  local cmd=${1:-start}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop)
      [ -f "$DIR/$MARKER" ] || die "no cluster in $DIR (set CLOUDPILOT_CLUSTER_DIR?)"
      stop_all
      ;;
    status) cmd_status ;;
    start-node)
      if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt "$NODES" ]; then
        die "usage: $0 start-node N (1 to $NODES)"
      fi
      [ -f "$DIR/$MARKER" ] || die "no cluster in $DIR"
      # The binary the cluster was started with.
      CLOUDPILOT_BIN=${CLOUDPILOT_BIN:-$(cat "$DIR/bin")}
      find_binary
      start_node "$1"
      wait_health "node$1" "$(node_port "$1")"
      say "node$1 up on http://127.0.0.1:$(node_port "$1") (pid $(live_pid "node$1"))"
      ;;
    stop-redis)
      [ -f "$DIR/$MARKER" ] || die "no cluster in $DIR"
      stop_one redis 10
      ;;
    start-redis)
      [ -f "$DIR/$MARKER" ] || die "no cluster in $DIR"
      REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
      [ -n "$REDIS_SERVER" ] || die "redis-server not found on PATH"
      # shellcheck disable=SC1091
      source "$DIR/cluster.env"
      start_redis
      ;;
    -h | --help | help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (try --help)" ;;
  esac
}

main "$@"
