#!/usr/bin/env bash
# Plan Solution #4, "Server-Side Bootstrap Auto-Recovery": one health check of the bootstrap, with auto-restart.
# Install as /usr/local/bin/bootstrap-health.sh; bootstrap-health.timer runs it every 60 s (see ops/README.md).
#
#   1. process   pgrep -f "$BOOTSTRAP_PROCESS_PATTERN"          missing → restart
#   2. port      ss -tln "sport = :$BOOTSTRAP_PORT"              not listening → kill the hung process, restart
#   3. DHT       libp2p ping through nodes/supervisor/ping-cli.ts, 5 s deadline   no answer → kill, restart
#
# More than $MAX_RESTARTS restarts within $WINDOW_SECONDS: the operator is alerted and auto-restart stops until
# `bootstrap-health.sh --reset` (restart loops must not hide a deeper problem). Restart times persist in
# $STATE_DIR/restarts, one epoch second per line, so the count survives reboots and concurrent timers.
#
# Exit codes: 0 healthy · 1 restarted and healthy again · 2 alert raised or auto-restart suspended ·
#             3 restarted but still unhealthy · 64 bad usage or configuration.
# Every setting below can be overridden from the environment (systemd: /etc/default/bootstrap-health).
set -uo pipefail

PROCESS_PATTERN=${BOOTSTRAP_PROCESS_PATTERN:-chiral.*bootstrap}
PORT=${BOOTSTRAP_PORT:-4001}
PEER_ID=${BOOTSTRAP_PEER_ID:-}
PING_ADDR=${BOOTSTRAP_PING_ADDR:-${PEER_ID:+/ip4/127.0.0.1/tcp/$PORT/p2p/$PEER_ID}}
PING_TIMEOUT_MS=${PING_TIMEOUT_MS:-5000}
PING_PROTOCOL_PREFIX=${PING_PROTOCOL_PREFIX:-ipfs}
CHIRAL_SIM_DIR=${CHIRAL_SIM_DIR:-/opt/chiral-sim}
NODE_BIN=${NODE_BIN:-node}
PING_CMD=${PING_CMD:-"$NODE_BIN $CHIRAL_SIM_DIR/nodes/supervisor/ping-cli.ts"}
RESTART_CMD=${RESTART_CMD:-systemctl restart chiral-bootstrap.service}
KILL_CMD=${KILL_CMD:-systemctl kill --signal=SIGKILL chiral-bootstrap.service}
STATE_DIR=${STATE_DIR:-/var/lib/bootstrap-health}
MAX_RESTARTS=${MAX_RESTARTS:-3}
WINDOW_SECONDS=${WINDOW_SECONDS:-600}
RECOVERY_TIMEOUT_SECONDS=${RECOVERY_TIMEOUT_SECONDS:-30}
ALERT_CMD=${ALERT_CMD:-}
ALERT_WEBHOOK_URL=${ALERT_WEBHOOK_URL:-}

RESTARTS_FILE=$STATE_DIR/restarts
ALERT_FILE=$STATE_DIR/alert

# Under systemd, a "<N>" prefix sets the journald priority: `journalctl -p crit` then shows exactly the alerts.
log () { printf '%sbootstrap-health: %s\n' "${INVOCATION_ID:+<6>}" "$*"; }
warn () { printf '%sbootstrap-health: %s\n' "${INVOCATION_ID:+<4>}" "$*"; }
crit () { printf '%sbootstrap-health: %s\n' "${INVOCATION_ID:+<2>}" "$*"; }
die_usage () { printf 'bootstrap-health: %s\n' "$*" >&2; exit 64; }

for n in PORT PING_TIMEOUT_MS MAX_RESTARTS WINDOW_SECONDS RECOVERY_TIMEOUT_SECONDS; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die_usage "$n must be a whole number, got '${!n}'"
done
case "${1:-}" in
  '') ;;
  --reset) ;;
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  *) die_usage "unknown argument '$1' (usage: bootstrap-health.sh [--reset])" ;;
esac

mkdir -p "$STATE_DIR" || die_usage "cannot create STATE_DIR $STATE_DIR"
# One run at a time: two overlapping runs would both see the failure and restart twice.
exec 9>"$STATE_DIR/lock"
if ! flock -w 10 9; then warn "another run still holds $STATE_DIR/lock; skipping this one"; exit 0; fi

if [[ ${1:-} == --reset ]]; then
  rm -f "$RESTARTS_FILE" "$ALERT_FILE"
  log "restart history and alert cleared; auto-restart is on again"
  exit 0
fi

check_process () {
  local pids
  # pgrep never reports itself; the filter drops this script, whose own command line could match a loose pattern.
  pids=$(pgrep -f -- "$PROCESS_PATTERN" | grep -vx -e "$$" -e "$BASHPID" | tr '\n' ' ')
  if [[ -z ${pids// /} ]]; then DETAIL="no process matches '$PROCESS_PATTERN'"; return 1; fi
  DETAIL="pid ${pids% }"
}

check_port () {
  if [[ -n $(ss -Htln "sport = :$PORT" 2>/dev/null) ]]; then DETAIL="port $PORT listening"; return 0; fi
  DETAIL="nothing listens on port $PORT"
  return 1
}

check_dht () {
  if [[ -z $PING_ADDR ]]; then DETAIL="skipped (set BOOTSTRAP_PEER_ID or BOOTSTRAP_PING_ADDR)"; return 0; fi
  local out rc
  # ping-cli enforces the deadline itself; `timeout` is the backstop for a node runtime that hangs before it starts.
  out=$(timeout --kill-after=2 "$(( PING_TIMEOUT_MS / 1000 + 5 ))" $PING_CMD "$PING_ADDR" --timeout-ms "$PING_TIMEOUT_MS" --protocol-prefix "$PING_PROTOCOL_PREFIX" 2>&1 9>&-)
  rc=$?
  out=${out//$'\n'/ }
  if [[ $rc -eq 0 ]]; then DETAIL="libp2p ping ${out#ok } ms"; return 0; fi
  DETAIL="no libp2p ping answer: ${out:-exit code $rc}"
  return 1
}

# Runs the checks in order and stops at the first failure; FAILED names it.
check_all () {
  FAILED=
  local c
  for c in process port dht; do
    if "check_$c"; then
      [[ ${1:-} == quiet ]] || log "check $c ok: $DETAIL"
    else
      FAILED=$c
      [[ ${1:-} == quiet ]] || warn "check $c FAILED: $DETAIL"
      return 1
    fi
  done
}

notify () {
  local message=$1
  crit "ALERT: $message"
  if [[ -n $ALERT_CMD ]]; then
    ALERT_MESSAGE=$message bash -c "$ALERT_CMD" 9>&- || warn "ALERT_CMD failed (exit $?)"
  fi
  if [[ -n $ALERT_WEBHOOK_URL ]]; then
    # Slack-compatible JSON. The message is one line of our own text; backslashes and quotes (a process pattern
    # may hold either) are the only characters JSON needs escaped in it.
    local text=${message//\\/\\\\}
    text=${text//\"/\\\"}
    curl -fsS -m 10 -X POST -H 'content-type: application/json' -d "{\"text\":\"$text\"}" "$ALERT_WEBHOOK_URL" >/dev/null ||
      warn "alert webhook failed"
  fi
}

if check_all; then exit 0; fi
reason="$FAILED check failed: $DETAIL"

if [[ -f $ALERT_FILE ]]; then
  warn "auto-restart is suspended since $(cat "$ALERT_FILE"); not restarting. Investigate, then run: bootstrap-health.sh --reset"
  exit 2
fi

now=$(date +%s)
recent=()
if [[ -f $RESTARTS_FILE ]]; then
  while read -r t; do
    [[ $t =~ ^[0-9]+$ ]] && (( t > now - WINDOW_SECONDS )) && recent+=("$t")
  done < "$RESTARTS_FILE"
fi
if (( ${#recent[@]} >= MAX_RESTARTS )); then
  date -u +%Y-%m-%dT%H:%M:%SZ > "$ALERT_FILE"
  notify "bootstrap on $(hostname) restarted ${#recent[@]} times within $WINDOW_SECONDS s and is failing again ($reason); auto-restart is OFF until an operator runs bootstrap-health.sh --reset"
  exit 2
fi

# Recorded before acting: a restart that kills this script (or the machine) still counts.
{ printf '%s\n' "${recent[@]}"; printf '%s\n' "$now"; } | grep -v '^$' > "$RESTARTS_FILE.tmp" && mv "$RESTARTS_FILE.tmp" "$RESTARTS_FILE"
log "restarting the bootstrap (restart $(( ${#recent[@]} + 1 )) of at most $MAX_RESTARTS in $WINDOW_SECONDS s): $reason"
if [[ $FAILED != process ]]; then
  # Alive but not serving: a hung process may hold the port, so it goes first, by force.
  log "killing the hung bootstrap: $KILL_CMD"
  bash -c "$KILL_CMD" 9>&- || warn "KILL_CMD failed (exit $?); restarting anyway"
fi
# fd 9 (the lock) is closed for the command: a bootstrap started directly (not by systemd) would inherit it and
# hold the lock for its whole life, blocking every later run.
if ! bash -c "$RESTART_CMD" 9>&-; then
  warn "RESTART_CMD failed (exit $?): $RESTART_CMD"
  exit 3
fi

started=$(date +%s)
while (( $(date +%s) - started < RECOVERY_TIMEOUT_SECONDS )); do
  sleep 1
  if check_all quiet; then
    log "bootstrap recovered $(( $(date +%s) - now )) s after detection"
    check_all
    exit 1
  fi
done
check_all
warn "bootstrap still unhealthy ${RECOVERY_TIMEOUT_SECONDS} s after the restart ($FAILED: $DETAIL); the next run will try again"
exit 3
