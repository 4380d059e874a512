#!/usr/bin/env python3
"""`gguf_python_check.py write PATH` writes a fixed file with gguf-py's
GGUFWriter instead (tests/gguf_python.rs reads it with ember's reader).

Otherwise: reads a GGUF file with llama.cpp's own Python reader (`gguf.GGUFReader`,
the `gguf` package from llama.cpp's gguf-py) and prints what it sees as JSON:
alignment, data offset, every field (value types and contents) and every
tensor (name, type id, shape, size, absolute data offset, data as hex).
Used by tests/gguf_python.rs to check that ember's writer produces files
llama.cpp's tooling accepts."""
import json
import sys

import gguf
import numpy as np


def write(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 7)
    w.add_int16("t.i16", -300)
    w.add_uint32("t.u32", 123456)
    w.add_int64("t.i64", -(2**40))
    w.add_float32("t.f32", 0.5)
    w.add_float64("t.f64", 1.25)
    w.add_bool("t.bool", False)
    w.add_string("t.str", "日本語")
    w.add_token_list(["<unk>", "▁hi", "!"])
    w.add_token_scores([0.0, -1.25, -2.5])
    w.add_array("t.ints", [4, 5, 6])
    w.add_tensor("a.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.add_tensor("b.weight", np.arange(5, dtype=np.float16))
    q = np.arange(2 * 34, dtype=np.uint8).reshape(2, 34)
    w.add_tensor("c.weight", q, raw_shape=(2, 34), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if sys.argv[1] == "write":
    write(sys.argv[2])
    sys.exit(0)

r = gguf.GGUFReader(sys.argv[1])


def plain(v):
    if isinstance(v, list):
        return [plain(x) for x in v]
    if hasattr(v, "item"):
        return v.item()
    return v


fields = []
for name, f in r.fields.items():
    if name.startswith("GGUF."):
        continue
    fields.append({"name": name, "types": [int(t) for t in f.types], "value": plain(f.contents())})
tensors = [
    {
        "name": t.name,
        "type": int(t.tensor_type),
        "shape": [int(d) for d in t.shape],
        "n_bytes": int(t.n_bytes),
        "data_offset": int(t.data_offset),
        "data_hex": t.data.tobytes().hex(),
    }
    for t in r.tensors
]
print(json.dumps({
    "gguf_version": __import__("importlib.metadata").metadata.version("gguf"),
    "alignment": int(r.alignment),
    "data_offset": int(r.data_offset),
    "fields": fields,
    "tensors": tensors,
}))
