#!/usr/bin/env bash
# Installs, idempotently, every real component lagwatch's tests start:
# tansu (Kafka-protocol broker), nats-server, prometheus + promtool,
# prometheus-alertmanager, wrk, and the build's C dependencies.
# Runs as root on Debian 12; skips whatever is already present.
set -euo pipefail

log() { printf 'test-env: %s\n' "$*" >&2; }

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

have gcc || need_apt+=(gcc)
have make || need_apt+=(make)
have pkg-config || need_apt+=(pkg-config)
[ -f /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
# librdkafka's TLS/SCRAM/OAUTHBEARER (OpenSSL) and GSSAPI (Cyrus SASL) support.
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
[ -f /usr/include/sasl/sasl.h ] || need_apt+=(libsasl2-dev)
# OAUTHBEARER with OIDC: librdkafka's configure looks for libcurl's headers and
# library (the binary links rdkafka's static curl; this is for the check).
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] \
  || [ -n "$(find /usr/include -path '*/curl/curl.h' -print -quit 2>/dev/null)" ] \
  || need_apt+=(libcurl4-openssl-dev)
have nats-server || need_apt+=(nats-server)
have prometheus || need_apt+=(prometheus)
have promtool || need_apt+=(prometheus)
have prometheus-alertmanager || need_apt+=(prometheus-alertmanager)
have curl || need_apt+=(curl)
have kubectl || need_apt+=(kubernetes-client)
have chromium || need_apt+=(chromium fonts-dejavu-core)
have pip3 || need_apt+=(python3-pip)
# wrk: HTTP load for benches/metrics_serve.rs (scrape latency under concurrency).
have wrk || need_apt+=(wrk)
# tmux: a real terminal for `lagwatch top` (tests/cli.rs); openssl: a private CA
# for the HTTPS receiver test (tests/alerts.rs).
have tmux || need_apt+=(tmux)
have openssl || need_apt+=(openssl)

if [ "${#need_apt[@]}" -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packages' services from starting: tests run their own.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# kubernetes-validate: validates rendered manifests against the Kubernetes schemas
# (it brings PyYAML, which scripts/gen-prometheusrule.py uses).
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  log "installing kubernetes-validate (PyPI)"
  pip3 install --quiet kubernetes-validate 2>/dev/null \
    || pip3 install --quiet --break-system-packages kubernetes-validate
fi
# helm-python-sdk: real Helm (v4's Go SDK as a library) to lint and render the
# chart; Helm itself is not in Debian's packages.
if ! python3 -c "import helm_python" >/dev/null 2>&1; then
  log "installing helm-python-sdk (PyPI)"
  pip3 install --quiet "helm-python-sdk==0.2.2" 2>/dev/null \
    || pip3 install --quiet --break-system-packages "helm-python-sdk==0.2.2"
fi

# tansu: a Kafka-protocol broker in Rust; the storage features are not default.
TANSU_VERSION=0.6.0
export PATH="$HOME/.cargo/bin:$PATH"
if tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  :
else
  log "installing tansu $TANSU_VERSION with cargo (about 10 minutes on 2 cores)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql --quiet
fi

for tool in tansu nats-server prometheus promtool prometheus-alertmanager kubectl kubernetes-validate chromium wrk tmux openssl python3; do
  have "$tool" || { log "ERROR: $tool still missing after install"; exit 1; }
done
python3 -c "import helm_python" 2>/dev/null \
  || { log "ERROR: helm-python-sdk still missing after install (pip3 install helm-python-sdk)"; exit 1; }
log "ready: $(tansu --version 2>&1 | head -n1); nats-server $(nats-server --version 2>&1 | head -n1); $(prometheus --version 2>&1 | head -n1)"
