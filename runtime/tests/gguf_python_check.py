#!/usr/bin/env python3
"""Reads a GGUF file with llama.cpp's own Python reader (`gguf.GGUFReader`,
the `gguf` package from llama.cpp's gguf-py) and prints what it sees as JSON:
alignment, data offset, every field (value types and contents) and every
tensor (name, type id, shape, size, absolute data offset, data as hex).
Used by tests/gguf_python.rs to check that ember's writer produces files
llama.cpp's tooling accepts."""
import json
import sys

import gguf

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
