#!/usr/bin/env python3
"""Generates the fixtures of quant/tests/reference_legacy.rs (non-k-quant formats).

Command (from the repository root; needs numpy and the `gguf` package, 0.19.0 was used):

    python3 quant/tests/data/gen_legacy.py \
        --ggml-src ~/.cache/llama-cpp-ref/src/llama_cpp_python-0.3.36/vendor/llama.cpp/ggml

`--ggml-src` points at the ggml source that the llama-cpp-python 0.3.36 sdist vendors
(`../shared/tools/build-llama-cpp.sh` downloads and unpacks it; any unpacked copy works).
It is compiled (gcc, -O2 -ffp-contract=off, no -march: plain x86-64 has no FMA to fuse
with) to produce the fixtures that the `gguf` package cannot: Q8_1 and IQ4_NL quantization.
The script also checks that ggml's C quantizers give the same bytes as `gguf` for Q4_0,
Q4_1, Q5_0, Q5_1 and Q8_0 and stops if they disagree.

Everything is deterministic (numpy seed 20240611). Output, all little-endian, in
quant/tests/data/legacy/:

  manifest.json             cases (name, n), block-data sets (type, n), versions used
  CASE.in.f32               input values of case CASE
  CASE.TYPE.q               gguf.quants.quantize(input, TYPE) bytes, TYPE in Q4_0 Q4_1
                            Q5_0 Q5_1 Q8_0 F16 BF16
  CASE.TYPE.deq.f32         gguf.quants.dequantize(those bytes, TYPE)
  CASE.Q8_1.ggml.q          ggml quantize_row_q8_1_ref(input)
  CASE.IQ4_NL.ggml.q        ggml quantize_row_iq4_nl_ref(input) (indices of near-zero blocks,
                            which this ggml leaves uninitialised, written as zeros)
  CASE.IQ4_NL_search.ggml.q ggml quantize_iq4_nl(input, 1 row, no imatrix)
  blocks.TYPE.q             random block bytes (valid finite f16 scales, random nibbles
                            and high bits), TYPE in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL F16 BF16
  blocks.TYPE.deq.f32       gguf.quants.dequantize(those bytes, TYPE)

Inputs avoid what ggml leaves undefined: NaN/inf and subnormal magnitudes whose scale's
reciprocal overflows (C then converts inf to int8, which is undefined behaviour), except
in the `specials` case, which only goes through F16 and BF16.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "legacy")
SEED = 20240611
LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
FLOATS = ["F16", "BF16"]

C_HELPER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"
#include "ggml-quants.h"
/* Symbols ggml-quants.c references on paths this helper never takes. */
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "ggml_abort %s:%d\n", file, line); abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t n) { (void)t; (void)n; abort(); }
const char * ggml_type_name(enum ggml_type t) { (void)t; abort(); }
size_t ggml_type_size(enum ggml_type t) { (void)t; abort(); }
int main(int argc, char ** argv) {
    if (argc != 4) return 2;
    FILE * f = fopen(argv[2], "rb"); if (!f) return 3;
    static float x[1 << 16]; size_t n = fread(x, 4, 1 << 16, f); fclose(f);
    if (n % 32) return 4;
    static unsigned char y[1 << 18]; size_t bytes;
    const char * t = argv[1];
    if      (!strcmp(t, "Q4_0")) { quantize_row_q4_0_ref(x, (block_q4_0 *)y, n); bytes = n / 32 * 18; }
    else if (!strcmp(t, "Q4_1")) { quantize_row_q4_1_ref(x, (block_q4_1 *)y, n); bytes = n / 32 * 20; }
    else if (!strcmp(t, "Q5_0")) { quantize_row_q5_0_ref(x, (block_q5_0 *)y, n); bytes = n / 32 * 22; }
    else if (!strcmp(t, "Q5_1")) { quantize_row_q5_1_ref(x, (block_q5_1 *)y, n); bytes = n / 32 * 24; }
    else if (!strcmp(t, "Q8_0")) { quantize_row_q8_0_ref(x, (block_q8_0 *)y, n); bytes = n / 32 * 34; }
    else if (!strcmp(t, "Q8_1")) { quantize_row_q8_1_ref(x, (block_q8_1 *)y, n); bytes = n / 32 * 36; }
    else if (!strcmp(t, "IQ4_NL")) { quantize_row_iq4_nl_ref(x, (block_iq4_nl *)y, n); bytes = n / 32 * 18; }
    else if (!strcmp(t, "IQ4_NL_search")) { bytes = quantize_iq4_nl(x, y, 1, n, NULL); }
    else return 5;
    f = fopen(argv[3], "wb"); if (!f) return 6;
    fwrite(y, 1, bytes, f); fclose(f);
    return 0;
}
"""


def block(rng, kind):
    """One 32-value block of a named awkward kind."""
    x = rng.standard_normal(32).astype(np.float32)
    if kind == "zeros":
        return np.zeros(32, np.float32)
    if kind == "equal_pos":
        return np.full(32, 3.0, np.float32)
    if kind == "equal_neg":
        return np.full(32, -1.5, np.float32)
    if kind == "huge":
        return np.clip(x * 2e4, -6e4, 6e4).astype(np.float32)
    if kind == "f16_max":
        x = x * 1e4
        x[5], x[6] = 65504.0, -65504.0
        return x.astype(np.float32)
    if kind == "small":
        return (x * 1e-6).astype(np.float32)  # scales underflow f16 to zero/subnormal
    if kind == "tiny":
        return (x * 1e-30).astype(np.float32)
    if kind == "neg_max":
        x[7] = -10.0
        return x
    if kind == "pos_max":
        x[19] = 10.0
        return x
    if kind == "tie_pos_first":
        x = np.clip(x, -3, 3)
        x[2], x[9] = 4.0, -4.0
        return x
    if kind == "tie_neg_first":
        x = np.clip(x, -3, 3)
        x[2], x[9] = -4.0, 4.0
        return x
    if kind == "q8_halves":  # d = 1 exactly: every value lands on a rounding half
        x = np.arange(32, dtype=np.float32) - 16.5
        x[31] = 127.0
        return x
    if kind == "q4_halves":  # Q4_0 d = 1: x + 8.5 lands on integers and halves
        x = (np.arange(32, dtype=np.float32) % 16) - 7.5
        x[0] = -8.0
        return x
    if kind == "single":
        x = np.zeros(32, np.float32)
        x[13] = -0.37
        return x
    if kind == "pow2":
        return (np.sign(x) * 2.0 ** rng.integers(-20, 12, 32)).astype(np.float32)
    if kind == "uniform_pos":
        return rng.uniform(0.5, 2.0, 32).astype(np.float32)
    raise ValueError(kind)


AWKWARD = ["zeros", "equal_pos", "equal_neg", "huge", "f16_max", "small", "tiny", "neg_max", "pos_max",
           "tie_pos_first", "tie_neg_first", "q8_halves", "q4_halves", "single", "pow2", "uniform_pos"]


def cases(rng):
    out = {}
    out["one_block"] = rng.standard_normal(32).astype(np.float32)
    x = (rng.standard_normal(64) * 10).astype(np.float32)
    x[40] = -55.0
    out["two_blocks"] = x
    out["awkward"] = np.concatenate([block(rng, k) for k in AWKWARD])
    # 576 = SmolLM2's n_embd: 18 blocks, each with its own scale, some heavy-tailed.
    scales = (10.0 ** rng.uniform(-3, 2, 18)).astype(np.float32)
    x = rng.standard_t(3, size=(18, 32)) * scales[:, None]
    out["row576"] = x.astype(np.float32).reshape(-1)
    # The synthetic data of ggml's test-quantize-fns: 0.1 + 2 cos(i), 7 blocks.
    out["cos224"] = (0.1 + 2 * np.cos(np.arange(224, dtype=np.float32))).astype(np.float32)
    return out


def specials():
    f16_half = np.float32(1 + 2.0 ** -11)  # exactly halfway between two f16 values: to even
    vals = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, -np.nan, 65504.0, 65519.996, 65520.0, 1e6,
            -1e6, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1e-9, f16_half,
            np.float32(1 + 3 * 2.0 ** -11), np.float32(1 + 2.0 ** -8), np.float32(1 + 3 * 2.0 ** -8),
            np.float32(1 + 2.0 ** -8 + 2.0 ** -20), 3.4028235e38, -3.4028235e38, 1e-40, -1e-45]
    x = np.array(vals, dtype=np.float32)
    x = np.concatenate([x, np.zeros(32 - len(x) % 32, np.float32)])
    return x


def random_blocks(rng, name, nblocks):
    """Random bytes for `nblocks` blocks of a type with finite f16 scales."""
    qt = T[name]
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    if name == "F16":
        bits = rng.integers(0, 1 << 16, nblocks * 32, dtype=np.uint16)
        bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF  # no inf/NaN: clear an exponent bit
        return bits.view(np.uint8)
    if name == "BF16":
        bits = rng.integers(0, 1 << 16, nblocks * 32, dtype=np.uint16)
        return bits.view(np.uint8)  # NaNs included: dequantization is a shift
    raw = rng.integers(0, 256, (nblocks, ts), dtype=np.uint8)
    n_scales = 2 if name in ("Q4_1", "Q5_1") else 1
    scales = np.concatenate([
        rng.standard_normal(nblocks * n_scales) * 0.05,
    ]).astype(np.float16)
    # A few edge scales: zero, negative zero, smallest subnormal, largest finite.
    edge = np.array([0.0, -0.0, 5.9604645e-08, 65504.0, -65504.0, 6.1e-05], np.float16)
    scales[: len(edge)] = edge
    raw[:, : 2 * n_scales] = scales.view(np.uint8).reshape(nblocks, 2 * n_scales)
    return raw.reshape(-1)


def write(name, arr):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(np.ascontiguousarray(arr).tobytes())


def build_helper(ggml_src, tmp):
    src = os.path.join(tmp, "ggml_ref.c")
    with open(src, "w") as f:
        f.write(C_HELPER)
    exe = os.path.join(tmp, "ggml_ref")
    inc = ["-I" + os.path.join(ggml_src, d) for d in ("include", "src", "src/ggml-cpu")]
    cmd = ["gcc", "-O2", "-ffp-contract=off", "-std=gnu11", *inc, src,
           os.path.join(ggml_src, "src", "ggml-quants.c"), "-lm", "-o", exe]
    subprocess.run(cmd, check=True)
    return exe


def ggml_quantize(exe, tmp, ty, x):
    inp, out = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.q")
    x.astype("<f4").tofile(inp)
    subprocess.run([exe, ty, inp, out], check=True)
    return np.fromfile(out, dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ggml-src", required=True, help="ggml directory of the vendored llama.cpp source")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".f32", ".q", ".json")):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(SEED)
    manifest = {"cases": [], "blocks": [], "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0",
                "numpy": np.__version__, "seed": SEED}
    try:
        from importlib.metadata import version
        manifest["gguf"] = version("gguf")
    except Exception:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_helper(os.path.expanduser(args.ggml_src), tmp)
        all_cases = cases(rng)
        for name, x in all_cases.items():
            assert x.dtype == np.float32 and x.size % 32 == 0 and np.all(np.isfinite(x))
            write(f"{name}.in.f32", x.astype("<f4"))
            for ty in LEGACY + FLOATS:
                q = quants.quantize(x.reshape(1, -1), T[ty]).view(np.uint8).reshape(-1)
                deq = quants.dequantize(q.reshape(1, -1), T[ty]).astype(np.float32).reshape(-1)
                write(f"{name}.{ty}.q", q)
                write(f"{name}.{ty}.deq.f32", deq.astype("<f4"))
                if ty in LEGACY:
                    c = ggml_quantize(exe, tmp, ty, x)
                    if not np.array_equal(c, q):
                        sys.exit(f"ggml C and gguf numpy disagree on {ty} for case {name}")
            for ty in ["Q8_1", "IQ4_NL", "IQ4_NL_search"]:
                q = ggml_quantize(exe, tmp, ty, x)
                if ty == "IQ4_NL":
                    # This ggml's quantize_row_iq4_nl_ref leaves the indices of a block whose
                    # largest magnitude is < GROUP_MAX_EPS (1e-15) uninitialised (newer ggml
                    # zeroes them: `memset(Lb, 0, block_size)`). The scale is 0, so the values
                    # are 0 either way; write the zeros newer ggml writes, to stay reproducible.
                    qb = q.reshape(-1, 18)
                    for b, xb in enumerate(x.reshape(-1, 32)):
                        if np.abs(xb).max() < 1e-15:
                            assert not qb[b, :2].any(), f"IQ4_NL scale of near-zero block {b} in {name}"
                            qb[b, 2:] = 0
                write(f"{name}.{ty}.ggml.q", q)
            manifest["cases"].append({"name": name, "n": int(x.size)})
        x = specials()
        write("specials.in.f32", x.astype("<f4"))
        for ty in FLOATS:
            with np.errstate(over="ignore"):  # 1e6 and f32::MAX overflow f16 on purpose
                q = quants.quantize(x.reshape(1, -1), T[ty]).view(np.uint8).reshape(-1)
            write(f"specials.{ty}.q", q)
            write(f"specials.{ty}.deq.f32", quants.dequantize(q.reshape(1, -1), T[ty]).astype("<f4").reshape(-1))
        manifest["specials_n"] = int(x.size)
        for ty in LEGACY + ["IQ4_NL"] + FLOATS:
            nblocks = 64 if ty not in FLOATS else 8
            q = random_blocks(rng, ty, nblocks)
            write(f"blocks.{ty}.q", q)
            deq = quants.dequantize(q.reshape(1, -1), T[ty]).astype("<f4").reshape(-1)
            write(f"blocks.{ty}.deq.f32", deq)
            manifest["blocks"].append({"type": ty, "n": int(deq.size)})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
