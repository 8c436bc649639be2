#!/usr/bin/env bash
# Make a Docker engine answer on a Debian bookworm machine without one (CI, a fresh VM):
# install Debian's docker.io (and debootstrap, which `simcore images build --offline` needs),
# then start dockerd in the background. Idempotent: an engine that already answers is left
# alone, and only missing packages are installed. Runs as root; no systemd is assumed.
#
# Environment:
#   SIMTUI_DOCKERD_LOG              dockerd's log file (default /var/log/dockerd.log)
#   SIMTUI_DOCKERD_STORAGE_DRIVERS  storage drivers to try, in order (default "overlay2 vfs")
#   SIMTUI_DOCKERD_WAIT_S           seconds to wait for each attempt to answer (default 60)
set -euo pipefail

log=${SIMTUI_DOCKERD_LOG:-/var/log/dockerd.log}
read -r -a drivers <<<"${SIMTUI_DOCKERD_STORAGE_DRIVERS:-overlay2 vfs}"
wait_s=${SIMTUI_DOCKERD_WAIT_S:-60}

say() { echo "ci-engine: $*"; }
# Seconds since a $EPOCHREALTIME stamp, to one decimal: the timings go in the CI log.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# `docker info` can hang on a half-started daemon; bound every probe.
engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if [ "$(id -u)" -ne 0 ]; then
  say "must run as root (it installs packages and starts dockerd)" >&2
  exit 1
fi

answering=false
if command -v docker >/dev/null && engine_answers; then
  answering=true
fi

need=()
if ! $answering && ! command -v dockerd >/dev/null; then
  need+=(docker.io)
fi
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  t0=$EPOCHREALTIME
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  say "installed ${need[*]} in $(since "$t0")s"
fi

if $answering; then
  say "engine already answers; leaving it as it is"
  exit 0
fi

# True when $1 names a live (not zombie) process whose command is $2.
process_is() {
  local pid=$1 name=$2 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$state" != Z ]
}

# A daemon killed uncleanly (as when a session ends) leaves its pid files behind, and
# dockerd refuses to start while the pid in its file still exists, even as an unreaped
# zombie or a reused pid. Remove the files that name no live daemon.
clear_stale_pidfiles() {
  local file name pid
  for file in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
    name=${file##*:}
    file=${file%:*}
    [ -f "$file" ] || continue
    pid=$(cat "$file" 2>/dev/null || true)
    if ! process_is "$pid" "$name"; then
      say "removing stale $file (pid ${pid:-?} is not a live $name)"
      rm -f "$file"
    fi
  done
}

wait_for_engine() {
  local pid=$1 deadline=$((SECONDS + wait_s))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if engine_answers; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.5
  done
  return 1
}

# One attempt: start dockerd with a storage driver and wait until it answers. Returns 2
# when the driver was refused (overlay2 on overlayfs, in some nested VMs: try the next
# one), 1 on any other failure (a slower driver would not fix it, and would hide it).
start_dockerd() {
  local driver=$1 pid offset other
  offset=$(stat -c %s "$log" 2>/dev/null || echo 0)
  say "starting dockerd (storage driver $driver)"
  # setsid + redirections: the daemon must not hold the CI's output pipe open or share its
  # session, or the CI step would wait on it (or take it down) when .ci/run ends.
  setsid dockerd --storage-driver="$driver" </dev/null >>"$log" 2>&1 &
  pid=$!
  if wait_for_engine "$pid"; then
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # Only this attempt's part of the log, and only error lines: info lines name the driver too.
  if tail -c +"$((offset + 1))" "$log" |
    grep -qiE 'failed to start daemon.*(graphdriver|driver)|level=(error|fatal).*(graphdriver|overlay)'; then
    say "storage driver $driver refused" >&2
    return 2
  fi
  # Another dockerd may have taken the pid file meanwhile (started by hand): use that one.
  other=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [ "$other" != "$pid" ] && process_is "$other" dockerd && wait_for_engine "$other"; then
    return 0
  fi
  say "dockerd failed with storage driver $driver" >&2
  return 1
}

t0=$EPOCHREALTIME
existing=$(cat /var/run/docker.pid 2>/dev/null || true)
if process_is "$existing" dockerd; then
  # A daemon is running but did not answer yet (still starting): wait for it rather than
  # start a second one, which its pid file would refuse anyway.
  say "dockerd (pid $existing) is running; waiting for it to answer"
  if wait_for_engine "$existing"; then
    say "engine up in $(since "$t0")s"
    exit 0
  fi
else
  clear_stale_pidfiles
  for driver in "${drivers[@]}"; do
    status=0
    start_dockerd "$driver" || status=$?
    if [ "$status" -eq 0 ]; then
      say "engine up in $(since "$t0")s: $(docker info --format \
        'server {{.ServerVersion}}, storage driver {{.Driver}}, cgroup v{{.CgroupVersion}}')"
      exit 0
    fi
    [ "$status" -eq 2 ] || break
  done
fi

say "no Docker engine could be started; last lines of $log:" >&2
tail -n 30 "$log" >&2 || true
exit 1
