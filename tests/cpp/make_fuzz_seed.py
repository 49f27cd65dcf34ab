"""Writes a tiny valid DA3 GGUF (about 100 KB) for the coverage-guided fuzzer
(tests/cpp/fuzz_load.cpp): the fixture's layout with every width shrunk (embed_dim 64, 4
blocks, head features 8), seeded random values. Usage: python make_fuzz_seed.py FIXTURE OUT"""
import re
import sys

import gguf
import numpy as np

src, out = sys.argv[1], sys.argv[2]
r = gguf.GGUFReader(src)
P = "depthanything3."
meta = {P + "vit.embed_dim": 64, P + "vit.num_heads": 1, P + "vit.depth": 4, P + "vit.mlp_hidden": 64,
        P + "vit.alt_start": 2, P + "vit.rope_start": 2, P + "vit.qknorm_start": -1, P + "vit.pos_embed_grid": 2}
w = gguf.GGUFWriter(out, arch="depthanything3")
for name, f in r.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    if name == P + "vit.out_layers":
        w.add_key_value(name, [0, 1, 2, 3], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
    elif name == P + "head.out_channels":
        w.add_key_value(name, [8, 8, 8, 8], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
    else:
        sub = f.types[1] if len(f.types) > 1 else None
        w.add_key_value(name, meta.get(name, f.contents()), f.types[0], sub_type=sub)
rng = np.random.default_rng(0)
for t in r.tensors:
    n = t.name
    if n.startswith("cam.") or (m := re.match(r"vit\.blk\.(\d+)\.", n)) and int(m.group(1)) >= 4:
        continue
    ne = [int(d) for d in t.shape]
    if n.startswith("vit."):
        ne = [{384: 64, 1152: 192, 1536: 64}.get(d, d) for d in ne]
        if n == "vit.pos_embed":
            ne = [64, 5]
    else:
        ne = [{768: 128, 48: 8, 96: 8, 192: 8, 384: 8, 64: 8}.get(d, d) for d in ne]
        if n.startswith("head.scratch.out1."):
            ne[-1] = 4
        if n == "head.scratch.out2a.weight":
            ne[2] = 4
    shape = tuple(reversed(ne))
    vals = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    if "norm" in n and n.endswith(".weight"):
        vals += 1.0
    w.add_tensor(n, vals.astype(np.float16) if t.tensor_type == gguf.GGMLQuantizationType.F16 else vals)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
