#!/usr/bin/env bash
# The private test daemon (test/helpers/dockerd.ts, bench/docker.js): starts it unless it answers,
# and builds the test image unless it exists. Run under `flock -o CACHE/start.lock` (-o: the
# daemon must not inherit the lock).
#   dockerd.sh start CACHE IMAGE CLIENT
#   dockerd.sh stop CACHE           (stops it; the caller holds users.lock exclusively)
set -e
cmd=$1 cache=$2
cd "$cache"
host="unix://$cache/docker.sock"
if [ "$cmd" = stop ]; then
  p=$(cat dockerd.pid 2>/dev/null) || exit 0
  kill "$p" 2>/dev/null || exit 0
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || exit 0; sleep 0.1; done
  exit 0
fi
image=$3 client=$4
alive() { [ -S docker.sock ] && DOCKER_HOST=$host "$client" version >/dev/null 2>&1; }
if ! alive; then
  if [ -f dockerd.pid ] && kill -0 "$(cat dockerd.pid)" 2>/dev/null; then kill "$(cat dockerd.pid)"; sleep 1; fi
  rm -f docker.sock dockerd.pid
  mkdir -p data exec
  # No bridge, no iptables: the tests' containers run without a network, and nothing of the
  # machine's own networking (or another daemon's docker0) is touched.
  setsid /usr/sbin/dockerd --data-root "$cache/data" --exec-root "$cache/exec" \
    --host "$host" --pidfile "$cache/dockerd.pid" --group docker \
    --bridge none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
    --log-level warn >>dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 600); do alive && break; sleep 0.1; done
  alive || { echo "dockerd did not start; see $cache/dockerd.log" >&2; tail -n 20 dockerd.log >&2; exit 1; }
fi
chmod 0660 docker.sock
if ! DOCKER_HOST=$host "$client" image inspect "$image" >/dev/null 2>&1; then
  mmdebstrap --quiet --variant=apt --include=python3-minimal,procps bookworm - |
    DOCKER_HOST=$host "$client" import - "$image" >/dev/null
fi
