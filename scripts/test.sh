#!/usr/bin/env bash
# ember's test command (README "Run every test"; .ci/run calls it).
# On a fresh Debian machine it installs everything it needs first: apt packages
# (cross compilers, qemu), rustup targets, the Python oracle packages and the
# real models (into <repo>/.models, never outside the repo). Then it runs:
#   1. the workspace tests in debug mode, and the API docs (no warnings);
#   2. the end-to-end model tests in release mode (feature `e2e`);
#   3. the ember-quant tests cross-compiled for aarch64 under qemu
#      (Cortex-A72 = NEON only, and `-cpu max` = dotprod);
#   4. the AVX-512 kernels on Bochs' emulated tigerlake and skylake-x CPUs
#      (scripts/test-x86-avx512.sh, a bare-metal harness; ~3 minutes);
#   5. the no_std builds of ember-quant and ember for thumbv7em-none-eabihf.
set -euo pipefail
cd "$(dirname "$0")/.."
export EMBER_HOME="${EMBER_HOME:-$PWD/.models}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n=== %s ===\n' "$*"; }

step "system packages"
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v python3 >/dev/null || need+=(python3 python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

step "rust targets"
rustup target add aarch64-unknown-linux-gnu thumbv7em-none-eabihf >/dev/null

step "python oracle packages"
python3 -c 'import gguf, numpy' 2>/dev/null || python3 -m pip install -q 'gguf==0.19.0' numpy

step "models"
scripts/fetch-models.sh

step "workspace tests (debug)"
cargo test --workspace

step "API docs build without warnings (broken or private links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "GGUF checks of the no-alloc build"
cargo test -p ember --no-default-features --test gguf_noalloc

step "end-to-end model tests (release)"
# Only the test files gated on `e2e` (the rest already ran in debug).
cargo test --release -p ember --features e2e \
  --test model_reference --test model_no_alloc --test perplexity_reference --test quantize_reference
cargo test --release -p ember-cli --features e2e \
  --test run_reference --test tokenize_reference --test chat_pipe --test perplexity

step "aarch64 tests under qemu"
if [ -x scripts/test-aarch64.sh ]; then scripts/test-aarch64.sh; else echo "scripts/test-aarch64.sh missing" >&2; exit 1; fi

step "AVX-512 kernels under Bochs (also where the CPU has none)"
scripts/test-x86-avx512.sh

step "no_std builds (thumbv7em-none-eabihf)"
cargo build -p ember-quant --no-default-features --target thumbv7em-none-eabihf
cargo build -p ember --no-default-features --target thumbv7em-none-eabihf

step "all tests passed"
