#!/usr/bin/env bash
# Runs ember-quant's AVX-512 kernels on emulated AVX-512 CPUs and compares them
# with the generic kernels, for machines without AVX-512 (the x86 kernels were
# written on a Zen 3 EPYC, which has none).
#
# Why Bochs and no OS: QEMU 7.2's TCG (Debian bookworm) offers no AVX-512;
# Bochs 2.7 emulates AVX-512 (EVEX) but reports an inconsistent XSAVE layout
# in CPUID leaf 0xD, so Linux disables XSAVE, and with it all AVX, under it.
# scripts/avx512-bochs/ is a bare-metal multiboot image (ember-quant is
# no_std) that enables the AVX-512 state itself and runs the comparisons of
# quant/tests/kernels_vs_generic.rs against the compile-time kernel table,
# reporting over COM1. Two runs:
#   1. built with AVX-512 F/BW/VL + VNNI, on Bochs' `tigerlake` (has VNNI):
#      the VNNI kernels;
#   2. built with AVX-512 F/BW/VL only, on `corei7_skylake_x` (no VNNI): the
#      BW-only twins (a VNNI instruction there would fault and stop the run).
# Each run must end with `RESULT: PASS`. Installs what it lacks (Debian
# packages). Takes a few minutes per run (Bochs interprets every
# instruction). Run from anywhere:
#   scripts/test-x86-avx512.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '\n--- %s ---\n' "$*"; }

say "tools"
need=()
command -v bochs >/dev/null || need+=(bochs bochsbios vgabios)
dpkg -s bochs-term >/dev/null 2>&1 || need+=(bochs-term)
[ -e /usr/lib/ISOLINUX/isolinux.bin ] || need+=(isolinux)
[ -e /usr/lib/syslinux/modules/bios/mboot.c32 ] || need+=(syslinux-common)
command -v xorriso >/dev/null || need+=(xorriso)
command -v script >/dev/null || need+=(bsdutils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo_=()
  [ "$(id -u)" = 0 ] || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
models=$(bochs -help cpu 2>&1 || true)
grep -qx tigerlake <<<"$models" || { echo "this Bochs has no AVX-512 CPU models" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

build() { # build VARIANT FEATURES -> $WORK/VARIANT.iso
  local variant=$1 features=$2
  say "build the bare-metal image ($variant: $features)"
  local target_dir="${CARGO_TARGET_DIR:-$ROOT/target}/avx512-bochs-$variant"
  RUSTFLAGS="-C target-feature=$features -C relocation-model=static" \
    CARGO_TARGET_DIR="$target_dir" \
    cargo rustc --manifest-path scripts/avx512-bochs/Cargo.toml --release \
    --target x86_64-unknown-linux-gnu -- \
    -C link-arg=-nostartfiles -C link-arg=-nostdlib -C link-arg=-static -C link-arg=-no-pie \
    -C link-arg=-Wl,-T,"$ROOT/scripts/avx512-bochs/link.ld" -C link-arg=-Wl,--build-id=none
  local iso="$WORK/iso-$variant"
  mkdir -p "$iso/isolinux"
  objcopy -O binary "$target_dir/x86_64-unknown-linux-gnu/release/avx512-bochs" "$iso/kernel.bin"
  cp /usr/lib/ISOLINUX/isolinux.bin "$iso/isolinux/"
  for m in ldlinux mboot libcom32 libutil; do cp "/usr/lib/syslinux/modules/bios/$m.c32" "$iso/isolinux/"; done
  printf 'DEFAULT bm\nPROMPT 0\nTIMEOUT 0\nLABEL bm\n  KERNEL mboot.c32\n  APPEND /kernel.bin\n' > "$iso/isolinux/isolinux.cfg"
  xorriso -as mkisofs -quiet -o "$WORK/$variant.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table "$iso" 2>/dev/null
}

run() { # run VARIANT CPU_MODEL
  local variant=$1 model=$2
  say "run $variant on Bochs cpu model $model"
  cat > "$WORK/bochsrc-$variant" <<EOF
megs: 256
cpu: model=$model, count=1, ips=100000000, reset_on_triple_fault=0
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
ata0-master: type=cdrom, path=$WORK/$variant.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$WORK/serial-$variant.out
display_library: term
log: $WORK/bochs-$variant.log
panic: action=fatal
error: action=report
clock: sync=none, time0=local
EOF
  echo c > "$WORK/continue" # Debian's Bochs has the debugger built in: start running
  # bochs-term needs a terminal; `script` gives it one.
  (cd "$WORK" && TERM=xterm timeout 3600 script -qfc "bochs -q -f bochsrc-$variant -rc continue" /dev/null >/dev/null 2>&1) || true
  cat "$WORK/serial-$variant.out" 2>/dev/null || true
  if ! grep -q '^RESULT: PASS' "$WORK/serial-$variant.out" 2>/dev/null; then
    echo "FAILED: $variant on $model (no RESULT: PASS; Bochs log tail follows)" >&2
    tail -n 20 "$WORK/bochs-$variant.log" >&2 || true
    exit 1
  fi
}

build vnni "+avx2,+fma,+f16c,+avx512f,+avx512bw,+avx512vl,+avx512vnni"
build bw "+avx2,+fma,+f16c,+avx512f,+avx512bw,+avx512vl"
run vnni tigerlake
run bw corei7_skylake_x
say "AVX-512 kernels (VNNI and BW-only builds) match generic under Bochs"
