#!/usr/bin/env bash
# Cross-compiles the ember-quant tests for aarch64-unknown-linux-gnu and runs
# them under qemu-user twice, with the CPU model chosen through QEMU_CPU:
#   1. QEMU_CPU=cortex-a72 (a Pi 4: NEON, no SDOT), EMBER_EXPECT_TIER=neon.
#      Tests named *dotprod* need SDOT and fail loudly without it, so this run
#      passes `--skip dotprod`; tier_selection checks that the dotprod tier
#      reports unavailable and that NEON is chosen.
#   2. QEMU_CPU=max (dotprod, i8mm, ...), EMBER_EXPECT_TIER=dotprod: every
#      test, SDOT kernels included; dotprod must be chosen.
# The runner (qemu-aarch64-static -L /usr/aarch64-linux-gnu) and the linker
# come from .cargo/config.toml. Installs what it lacks (Debian packages, the
# rustup target). Exits non-zero on any failure. Run from anywhere:
#   scripts/test-aarch64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '\n--- %s ---\n' "$*"; }

say "tools"
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/crt1.o ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo_=()
  [ "$(id -u)" = 0 ] || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
qemu-aarch64-static --version | head -n 1

# Debug profile: ember-quant is built at opt-level 2 even in debug (root
# Cargo.toml), and a release build costs more time than it saves under qemu.
say "build ember-quant tests for $TARGET"
cargo test -p ember-quant --target "$TARGET" --no-run

summary=()
# run CPU TIER [test-binary args...]: all ember-quant tests under QEMU_CPU=CPU.
run() {
  local cpu=$1 tier=$2
  shift 2
  say "QEMU_CPU=$cpu EMBER_EXPECT_TIER=$tier cargo test --no-fail-fast -p ember-quant --target $TARGET -- $*"
  local log
  log=$(mktemp)
  local status=0
  QEMU_CPU=$cpu EMBER_EXPECT_TIER=$tier cargo test --no-fail-fast -p ember-quant --target "$TARGET" -- "$@" 2>&1 | tee "$log" ||
    status=$?
  local passed failed filtered
  passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
  failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
  filtered=$(grep -Eo '[0-9]+ filtered out' "$log" | awk '{s += $1} END {print s + 0}')
  # The tier checks must have run (and passed) in this run, not been filtered away.
  local t
  for t in best_tier_is_the_expected_one higher_tiers_are_refused_lower_ones_usable \
    sdot_tier_unavailable_on_cortex_a72; do
    if ! grep -q "^test $t \.\.\. ok" "$log"; then
      echo "error: tier_selection::$t did not pass under QEMU_CPU=$cpu" >&2
      status=1
    fi
  done
  if [ "$passed" -eq 0 ]; then
    echo "error: no test passed under QEMU_CPU=$cpu" >&2
    status=1
  fi
  rm -f "$log"
  # Which kernels this CPU model gets, per format (tier_selection prints it).
  local table
  table=$(QEMU_CPU=$cpu EMBER_EXPECT_TIER=$tier cargo test -q -p ember-quant --target "$TARGET" \
    --test tier_selection -- --nocapture --exact best_tier_is_the_expected_one 2>&1 |
    grep '^best kernel table') || {
    echo "error: the kernel table check (best_tier_is_the_expected_one) failed under QEMU_CPU=$cpu" >&2
    status=1
  }
  summary+=("QEMU_CPU=$cpu (expect $tier): $passed passed, $failed failed, $filtered filtered out${*:+ (args: $*)}"
    "  $table")
  return $status
}

rc=0
run cortex-a72 neon --skip dotprod || rc=1
run max dotprod || rc=1

say "summary"
printf '%s\n' "${summary[@]}"
if [ $rc -ne 0 ]; then
  echo "aarch64 tests FAILED" >&2
  exit 1
fi
echo "aarch64 tests passed"
