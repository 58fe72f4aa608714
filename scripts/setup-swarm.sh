#!/usr/bin/env bash
# A real two-engine Docker Swarm on this one machine, for swarm mode's tests and CI: this machine's engine is the
# manager, a second dockerd started here inside its own network namespace joins as a worker. Traffic stays inside
# this machine's namespaces: the two engines talk over a veth pair on a private /30, and the swarm listens only there.
#
#   scripts/setup-swarm.sh up            idempotent: reuses a healthy swarm, otherwise reaps leftovers and builds one
#   scripts/setup-swarm.sh load IMAGE…   copies images the worker lacks into it (no registry: docker save | load)
#   scripts/setup-swarm.sh down          leaves the swarm, stops the second engine, deletes the namespace
#   scripts/setup-swarm.sh status        exit 0 when the swarm is up and both engines are ready
#
# `up` prints the worker's DOCKER_HOST. Needs root (network namespaces, a second dockerd). The main engine's swarm is
# only left by `down` when this script made it (a marker file says so): a swarm someone else runs is not touched,
# and `up` then refuses rather than join this machine to it.
#
# Why nsenter and not `ip netns exec`: the latter remounts /sys, and dockerd then fails with "Devices cgroup isn't
# mounted". Why dnsrr in swarm mode: this kernel has no IPVS, so a service's virtual IP does not route.
set -euo pipefail

NS=chiral-swarm
VETH_HOST=chsw-host
VETH_NS=chsw-ns
MANAGER_ADDR=10.231.0.1
WORKER_ADDR=10.231.0.2
STATE=/var/run/chiral-swarm
DATA_ROOT=/var/lib/chiral-swarm/docker
WORKER_SOCK="$STATE/docker.sock"
WORKER_HOST="unix://$WORKER_SOCK"
PIDFILE="$STATE/docker.pid"
LOG=/tmp/chiral-swarm-dockerd.log
MARKER="$STATE/swarm-made-by-setup"
# The worker's containers in their own cgroup subtree (the main engine's are under /docker), so that each engine's
# CPU can be read, and pinned to a core, on its own: bench/swarm.ts gives each engine one core, as one machine each.
CGROUP_PARENT=/chiral-swarm-worker

if [ "$(id -u)" != 0 ]; then exec sudo -n -E "$0" "$@"; fi
worker() { docker -H "$WORKER_HOST" "$@"; }
say() { echo "setup-swarm: $*" >&2; }

worker_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

healthy() {
  [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ] || return 1
  [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] || return 1
  [ -f "$MARKER" ] || return 1
  [ -n "$(worker_pid)" ] || return 1
  [ "$(worker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ] || return 1
  local worker_id
  worker_id="$(worker info --format '{{.Swarm.NodeID}}' 2>/dev/null)"
  [ "$(docker node inspect "$worker_id" --format '{{.Status.State}}' 2>/dev/null)" = ready ] || return 1
  # Exactly the two engines this script joined: ready ones only, a stale "down" entry would be reaped by `up`.
  [ "$(docker node ls --filter role=manager -q | wc -l)" -ge 1 ] || return 1
  [ "$(docker node ls --format '{{.Status}}' | grep -vc '^Ready$' || true)" = 0 ]
}

down() {
  local pid
  if [ -n "$(worker_pid)" ]; then
    worker swarm leave --force >/dev/null 2>&1 || true
    pid="$(worker_pid)"
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  # The worker's containerd and shims die with it; a killed dockerd can leave its mounts behind.
  { grep -o " $STATE/[^ ]*\| $DATA_ROOT/[^ ]*" /proc/mounts 2>/dev/null || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # A worker killed before it could leave keeps its membership on disk and would refuse the next join.
  rm -rf "$DATA_ROOT/swarm"
  if [ -f "$MARKER" ]; then
    docker swarm leave --force >/dev/null 2>&1 || true
    rm -f "$MARKER"
  fi
  ip netns delete "$NS" 2>/dev/null || true
  ip link delete "$VETH_HOST" 2>/dev/null || true
  rm -f "$PIDFILE" "$WORKER_SOCK"
}

up() {
  if healthy; then
    say "swarm already up (manager $MANAGER_ADDR, worker $WORKER_ADDR)"
    echo "$WORKER_HOST"
    return 0
  fi
  local state
  state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
  if [ "$state" != inactive ] && [ ! -f "$MARKER" ]; then
    say "this machine's engine is already in a swarm ($state) that this script did not make: leave it first (docker swarm leave --force) or run swarm mode against it directly"
    exit 2
  fi
  # Whatever a killed run left behind (a dead worker, a half-made swarm) goes first.
  down
  mkdir -p "$STATE" "$DATA_ROOT"
  chmod 700 "$STATE"

  ip netns add "$NS"
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
  ip link set "$VETH_NS" netns "$NS"
  ip addr add "$MANAGER_ADDR/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  nsenter --net="/var/run/netns/$NS" ip addr add "$WORKER_ADDR/30" dev "$VETH_NS"
  nsenter --net="/var/run/netns/$NS" ip link set "$VETH_NS" up
  nsenter --net="/var/run/netns/$NS" ip link set lo up
  nsenter --net="/var/run/netns/$NS" ip route add default via "$MANAGER_ADDR"

  # Its own bridge subnet, so `docker0` addresses in logs are never confused with the main engine's. Not the lock's
  # descriptor (9): the engine outlives this script, and would hold the lock against every later invocation.
  nsenter --net="/var/run/netns/$NS" setsid dockerd \
    --data-root "$DATA_ROOT" --exec-root "$STATE/exec" -H "$WORKER_HOST" --pidfile "$PIDFILE" \
    --storage-driver vfs --bip 172.30.0.1/24 --containerd-namespace chiral-swarm --containerd-plugins-namespace chiral-swarm-plugins \
    --cgroup-parent "$CGROUP_PARENT" \
    >"$LOG" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 60); do worker info >/dev/null 2>&1 && break; sleep 1; done
  worker info >/dev/null 2>&1 || { say "the second dockerd did not answer in 60 s:"; tail -20 "$LOG" >&2; down; exit 1; }

  # Listening only on the veth address: the swarm's control and data planes stay off every other interface.
  docker swarm init --advertise-addr "$MANAGER_ADDR" --listen-addr "$MANAGER_ADDR:2377" --data-path-addr "$MANAGER_ADDR" >/dev/null
  touch "$MARKER"
  worker swarm join --token "$(docker swarm join-token -q worker)" \
    --advertise-addr "$WORKER_ADDR" --listen-addr "$WORKER_ADDR:2377" --data-path-addr "$WORKER_ADDR" "$MANAGER_ADDR:2377" >/dev/null
  for _ in $(seq 1 60); do healthy && break; sleep 1; done
  healthy || { say "the worker did not become ready in 60 s"; docker node ls >&2 || true; down; exit 1; }
  say "swarm up: manager $MANAGER_ADDR (this engine), worker $WORKER_ADDR ($WORKER_HOST)"
  echo "$WORKER_HOST"
}

load() {
  [ -n "$(worker_pid)" ] || { say "no worker engine: run '$0 up' first"; exit 1; }
  local missing=()
  for image in "$@"; do
    worker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "loading ${missing[*]} into the worker"
    docker save "${missing[@]}" | worker load >/dev/null
  fi
}

# One invocation at a time: two test processes making (or taking down) the swarm at once would trip over each other.
exec 9>/var/run/chiral-swarm.lock
flock -w 300 9 || { say "another setup-swarm.sh held the lock for 300 s"; exit 1; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  load) shift; load "$@" ;;
  status) healthy ;;
  *) echo "usage: $0 up | load IMAGE… | down | status" >&2; exit 2 ;;
esac
