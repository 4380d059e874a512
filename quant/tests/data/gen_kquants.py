#!/usr/bin/env python3
"""Generate the k-quant fixtures in quant/tests/data/kquants/ (read by
quant/tests/reference_kquants.rs and quant/tests/bounds_kquants.rs).

Run from the repository root, with the `gguf` (0.19.0) and `numpy` packages:

    python3 quant/tests/data/gen_kquants.py

Deterministic (fixed seed): running it again rewrites identical files.

What it writes (all little-endian, no headers):

* `inputs_{256,512,2048}.f32`: f32 test rows with awkward blocks (all zero,
  constant, huge dynamic range, one outlier, tiny values, one sign only, ...).
  ember's quantizers run on them in the tests.
* `{q2_k,q3_k,q4_k,q5_k,q6_k}.blocks`: random block bytes (every bit random,
  the f16 `d`/`dmin` fields replaced by finite values, including zero, -0,
  subnormal and +-65504), and `{type}.f32`: their dequantization by the
  `gguf` package's numpy reference (`gguf.quants.dequantize`). The oracle is
  gguf, never ember.
* `q8_k.blocks` / `q8_k.f32`: gguf 0.19.0 has no Q8_K, so the dequantization
  `d * q` is computed here in numpy (float32), from random blocks with finite
  f32 `d`.
* `q8_k_quant_{256,512,2048}.blocks`: the inputs above quantized to Q8_K by a
  numpy port of ggml's `quantize_row_q8_K_ref` (below), the activation
  quantizer every k-quant dot product uses. (ggml leaves `bsums` untouched for
  an all-zero block; here, as in ember, they are zero.)

gguf 0.19.0 cannot *quantize* any k-quant, so ember's Q2_K..Q6_K
`quantize_ref` are checked by ggml's round-trip error bounds instead
(bounds_kquants.rs).
"""

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

QK_K = 256
OUT = Path(__file__).resolve().parent / "kquants"

# name, ggml type, bytes per block, byte offsets of the f16 fields in a block
KQUANTS = [
    ("q2_k", T.Q2_K, 84, [80, 82]),  # scales[16] qs[64] d dmin
    ("q3_k", T.Q3_K, 110, [108]),  # hmask[32] qs[64] scales[12] d
    ("q4_k", T.Q4_K, 144, [0, 2]),  # d dmin scales[12] qs[128]
    ("q5_k", T.Q5_K, 176, [0, 2]),  # d dmin scales[12] qh[32] qs[128]
    ("q6_k", T.Q6_K, 210, [208]),  # ql[128] qh[64] scales[16] d
]
N_BLOCKS = 16


def f16_bits(v: float) -> int:
    return int(np.array([v], dtype=np.float16).view(np.uint16)[0])


def random_finite_f16(rng: np.random.Generator) -> int:
    mag = 10.0 ** rng.uniform(-6.0, 2.0)
    return f16_bits(mag if rng.random() < 0.7 else -mag)


def special_f16(block: int, field: int, rng: np.random.Generator) -> int:
    """Awkward f16 values for the first blocks, random finite ones after."""
    table = {
        0: [0x0000, 0x0000],  # zero
        1: [0x8000, 0x3C00],  # -0.0, 1.0
        2: [0x7BFF, 0xFBFF],  # 65504, -65504
        3: [0x0001, 0x03FF],  # smallest and largest subnormals
        4: [0xBC00, 0x0000],  # -1.0, 0.0
    }
    if block in table:
        return table[block][field]
    return random_finite_f16(rng)


def random_blocks(rng: np.random.Generator, type_size: int, f16_offsets: list[int]) -> np.ndarray:
    blocks = rng.integers(0, 256, size=(N_BLOCKS, type_size), dtype=np.uint8)
    blocks[0, :] = 0  # all-zero block
    blocks[1, :] = 0xFF  # all-ones bits (f16 fields fixed below)
    for b in range(N_BLOCKS):
        for k, off in enumerate(f16_offsets):
            bits = special_f16(b, k, rng)
            blocks[b, off] = bits & 0xFF
            blocks[b, off + 1] = bits >> 8
    return blocks


def make_inputs(rng: np.random.Generator) -> dict[int, np.ndarray]:
    def block(kind: str) -> np.ndarray:
        if kind == "normal":
            return rng.standard_normal(QK_K).astype(np.float32)
        if kind == "zero":
            return np.zeros(QK_K, np.float32)
        if kind == "constant":
            return np.full(QK_K, -0.7431, np.float32)
        if kind == "huge_range":
            mags = 10.0 ** rng.uniform(-4.0, 4.0, QK_K)
            signs = rng.choice([-1.0, 1.0], QK_K)
            return (mags * signs).astype(np.float32)
        if kind == "outlier":
            x = (0.05 * rng.standard_normal(QK_K)).astype(np.float32)
            x[int(rng.integers(0, QK_K))] = 37.5
            return x
        if kind == "tiny":
            return (1e-9 * rng.standard_normal(QK_K)).astype(np.float32)
        if kind == "positive":
            return rng.uniform(0.25, 3.0, QK_K).astype(np.float32)
        if kind == "negative":
            return -rng.uniform(0.0, 1.0, QK_K).astype(np.float32)
        if kind == "ggml_cos":
            return (0.1 + 2.0 * np.cos(np.arange(QK_K, dtype=np.float32))).astype(np.float32)
        if kind == "sparse":
            x = np.zeros(QK_K, np.float32)
            idx = rng.choice(QK_K, 9, replace=False)
            x[idx] = rng.standard_normal(9).astype(np.float32) * 4
            return x
        raise ValueError(kind)

    return {
        256: block("normal"),
        512: np.concatenate([block("zero"), block("constant")]),
        2048: np.concatenate(
            [block(k) for k in ["huge_range", "outlier", "tiny", "positive", "negative", "ggml_cos", "sparse", "normal"]]
        ),
    }


def nearest_int(v: np.ndarray) -> np.ndarray:
    """ggml's nearest_int: round half to even (exact for |v| < 2**22)."""
    return np.rint(v).astype(np.int64)


def quantize_q8_k_ref(x: np.ndarray) -> bytes:
    """numpy port of ggml's quantize_row_q8_K_ref (ggml-quants.c)."""
    out = bytearray()
    for xb in x.reshape(-1, QK_K):
        ax = np.abs(xb)
        i = int(np.argmax(ax))  # first index of the largest magnitude, as `ax > amax`
        amax, vmax = ax[i], xb[i]
        if amax == 0:
            d = np.float32(0)
            q = np.zeros(QK_K, np.int8)
        else:
            iscale = np.float32(-127.0) / vmax  # float32 / float32
            q = np.minimum(127, nearest_int(iscale * xb)).astype(np.int8)  # float32 product
            d = np.float32(1.0) / iscale
        bsums = q.astype(np.int16).reshape(16, 16).sum(axis=1).astype("<i2")
        out += np.array([d], "<f4").tobytes() + q.tobytes() + bsums.tobytes()
    return bytes(out)


def main() -> None:
    rng = np.random.default_rng(20240611)
    OUT.mkdir(parents=True, exist_ok=True)

    inputs = make_inputs(rng)
    for n, x in inputs.items():
        assert x.dtype == np.float32 and x.size == n
        (OUT / f"inputs_{n}.f32").write_bytes(x.astype("<f4").tobytes())
        (OUT / f"q8_k_quant_{n}.blocks").write_bytes(quantize_q8_k_ref(x))

    for name, qtype, type_size, f16_offsets in KQUANTS:
        blocks = random_blocks(rng, type_size, f16_offsets)
        values = dequantize(blocks.reshape(-1), qtype).astype("<f4")
        assert values.size == N_BLOCKS * QK_K
        (OUT / f"{name}.blocks").write_bytes(blocks.tobytes())
        (OUT / f"{name}.f32").write_bytes(values.tobytes())

    # Q8_K: random int8 values and bsums, finite f32 scales (some special).
    q8 = rng.integers(0, 256, size=(N_BLOCKS, 292), dtype=np.uint8)
    d = (10.0 ** rng.uniform(-8.0, 3.0, N_BLOCKS) * rng.choice([-1.0, 1.0], N_BLOCKS)).astype("<f4")
    d[0], d[1], d[2] = 0.0, -0.0, np.float32(3.4e38)
    q8[:, 0:4] = d.view(np.uint8).reshape(N_BLOCKS, 4)
    qs = q8[:, 4:260].view(np.int8).astype(np.float32)
    with np.errstate(over="ignore"):  # 3.4e38 * 127 is +-inf, in Rust too
        values = (d.reshape(-1, 1).astype(np.float32) * qs).astype("<f4")
    (OUT / "q8_k.blocks").write_bytes(q8.tobytes())
    (OUT / "q8_k.f32").write_bytes(values.tobytes())

    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
