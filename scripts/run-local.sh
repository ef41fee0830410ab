#!/usr/bin/env bash
# Runs lagwatch against local brokers it starts itself: a tansu (Kafka protocol)
# and a nats-server with JetStream, on free ports, in a scratch directory.
# Installs what is missing first (scripts/test-env.sh). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/test-env.sh; else sudo --preserve-env=PATH bash scripts/test-env.sh; fi
export PATH="$HOME/.cargo/bin:$PATH"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
kport=$(free_port); nport=$(free_port); mport=$(free_port); hport=${LAGWATCH_PORT:-9358}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

(cd "$work" && exec tansu broker --listener-url "tcp://127.0.0.1:$kport" \
  --advertised-listener-url "tcp://127.0.0.1:$kport" --storage-engine memory://tansu/ >tansu.log 2>&1) &
pids+=($!)
nats-server -a 127.0.0.1 -p "$nport" -m "$mport" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
pids+=($!)

cat >"$work/lagwatch.yaml" <<YAML
http:
  listen: 127.0.0.1:$hport
poll_interval: 5s
sources:
  - name: local-kafka
    kafka:
      bootstrap_servers: ["127.0.0.1:$kport"]
  - name: local-nats
    jetstream:
      servers: ["nats://127.0.0.1:$nport"]
YAML
echo "lagwatch: http://127.0.0.1:$hport/metrics  (tansu 127.0.0.1:$kport, nats 127.0.0.1:$nport)"
cargo run --release --quiet -- run --config "$work/lagwatch.yaml"
