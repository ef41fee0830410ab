#!/usr/bin/env bash
# Runs every test of lagwatch on a fresh Debian 12 machine: installs the real
# components the tests start (scripts/test-env.sh), then the whole cargo test suite.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test daemon`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/test-env.sh
else
  sudo --preserve-env=PATH bash scripts/test-env.sh
fi
export PATH="$HOME/.cargo/bin:$PATH"

cargo test --locked "$@"
