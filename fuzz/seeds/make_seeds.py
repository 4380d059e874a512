#!/usr/bin/env python3
"""Writes the fuzz seeds with llama.cpp's own Python writer (gguf.GGUFWriter,
gguf 0.19.0), independent of ember's writer. Named *.seed, not *.gguf, so the
repository's `*.gguf` ignore rule (meant for models) does not hide them.
Run from this directory: python3 make_seeds.py"""
import os

import numpy as np
import gguf


def make(path, align=None, extra=False):
    w = gguf.GGUFWriter(path, "llama")
    if align:
        w.add_custom_alignment(align)
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_token_list(["<s>", "</s>", "▁a", "b"])
    w.add_token_scores([0.0, -1.0, -2.0, -3.0])
    w.add_token_types([3, 3, 1, 1])
    if extra:
        w.add_array("test.ints", [1, 2, 3])
        w.add_uint64("test.u64", 2**63)
        w.add_int8("test.i8", -3)
        w.add_float64("test.f64", 0.25)
    w.add_tensor("token_embd.weight", np.arange(16, dtype=np.float32).reshape(4, 4))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(4, dtype=np.float16))
    q = np.zeros((2, 34), dtype=np.uint8)
    w.add_tensor("blk.0.attn_q.weight", q, raw_shape=(2, 34), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


make("small.seed")
make("align64.seed", align=64, extra=True)
w = gguf.GGUFWriter("empty.seed", "none")
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
