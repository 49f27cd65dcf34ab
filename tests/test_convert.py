"""depth_anything_cpp.convert: official HF snapshot -> GGUF in the published layout.

Snapshots come from the official network (depth_anything_3) with seeded perturbed weights
(tests/reference); the published layout is checked against the shared fixture GGUF.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from depth_anything_cpp import ModelFormatError, ModelNotFoundError  # noqa: E402
from depth_anything_cpp import convert as conv  # noqa: E402

FIXTURE_GGUF = "da3-small-rand-f16.gguf"
# fixture metadata we deliberately write differently: the published converter writes
# cam.dim_in = 1536 for every preset; we write the real width (2 * embed_dim)
DIFFERENT_ON_PURPOSE = {"depthanything3.cam.dim_in"}
OUR_KEYS = {"general.file_type", "general.quantization_version", conv.KEY_PRESET, conv.KEY_QUANT_RULE,
            conv.KEY_QUANT_FALLBACK, conv.KEY_HAS_CAM_ENC}


def read_gguf(path):
    """(metadata {key: (types, value)}, tensors [(name, type, ggml shape, data)]) of a GGUF."""
    r = gguf.GGUFReader(str(path))
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        meta[k] = ([t.name for t in f.types], f.contents())
    tensors = [(t.name, t.tensor_type.name, [int(s) for s in t.shape], np.asarray(t.data)) for t in r.tensors]
    return meta, tensors


@pytest.fixture(scope="module")
def cases(reference):
    from reference import make_cases
    return make_cases


@pytest.fixture(scope="module")
def small_snapshot(cases):
    return cases.model_snapshot(cases.SMALL)


@pytest.fixture(scope="module")
def small_state(small_snapshot):
    from safetensors.numpy import load_file
    return load_file(str(small_snapshot / "model.safetensors"))


# ---------------------------------------------------------------- key mapping, all presets

@pytest.mark.parametrize("preset", conv.PRESETS)
def test_expected_tensors_are_the_official_state_dict(reference, preset):
    """Names, shapes and order of every official tensor, for every preset (no leftovers)."""
    model = reference.build_model(preset, init=False)
    official = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    specs = conv.expected_tensors(preset)
    assert [(s.key, s.shape) for s in specs] == official
    names = [s.name for s in specs if s.name]
    assert len(names) == len(set(names))
    dropped = [s.key for s in specs if s.name is None]
    # only the unused aux levels (0..2 of output_conv{1,2}_aux) are not written
    assert all(re.search(r"output_conv[12]_aux\.[012]\.", k) for k in dropped)
    assert not [s for s in conv.expected_tensors(preset, extras=False) if s.name and
                (s.name.startswith("cam_enc.") or "_aux" in s.name)]


@pytest.mark.parametrize("preset", ["da3-large", "da3-giant", "da3mono-large", "da3nested-giant-large"])
def test_expected_tensors_with_reduced_depth(reference, preset):
    ov = {"depth": 4, "out_layers": [0, 1, 2, 3], "alt_start": 2}
    model = reference.build_model(preset, overrides=ov, init=False)
    assert [(s.key, s.shape) for s in conv.expected_tensors(preset, overrides=ov)] == \
        [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_expected_tensors_rejects_unknown_preset_and_bad_overrides():
    with pytest.raises(ModelFormatError, match="da3-tiny"):
        conv.expected_tensors("da3-tiny")
    with pytest.raises(ModelFormatError, match="inconsistent"):
        conv.expected_tensors("da3-small", overrides={"depth": 40})
    with pytest.raises(ModelFormatError, match="unknown key"):
        conv.expected_tensors("da3-small", overrides={"width": 3})


# ---------------------------------------------------------------- published layout (fixture)

def test_f16_layout_equals_the_published_fixture(fixture_dir, small_snapshot, tmp_path):
    """--no-extras f16: same tensor names, order, ggml shapes and types, same metadata."""
    out = tmp_path / "small-f16.gguf"
    conv.convert(small_snapshot, out, type="f16", extras=False, checkpoint_name="da3-small_s0_a")
    fmeta, ften = read_gguf(fixture_dir / FIXTURE_GGUF)
    meta, ten = read_gguf(out)
    assert [(n, t, s) for n, t, s, _ in ten] == [(n, t, s) for n, t, s, _ in ften]
    assert set(meta) - set(fmeta) <= OUR_KEYS
    assert set(fmeta) <= set(meta)
    for k, (types, value) in fmeta.items():
        assert meta[k][0] == types, k
        if k in DIFFERENT_ON_PURPOSE:
            continue
        if isinstance(value, float) or (isinstance(value, list) and value and isinstance(value[0], float)):
            np.testing.assert_allclose(meta[k][1], value, rtol=1e-7, err_msg=k)
        else:
            assert meta[k][1] == value, k
    assert meta["depthanything3.cam.dim_in"][1] == 768
    assert meta["general.file_type"][1] == 1
    assert [k for k in meta if k in fmeta] == list(fmeta)   # published key order kept


def test_fixture_weights_round_trip_byte_exact(reference, fixture_dir, tmp_path):
    """A snapshot holding the fixture's weights converts back to the fixture's exact bytes."""
    model = reference.build_model("da3-small")
    reference.load_gguf_weights(model, fixture_dir / FIXTURE_GGUF)
    snap = reference.save_snapshot(model, tmp_path / "snap")
    out = tmp_path / "again.gguf"
    conv.convert(snap, out, type="f16", extras=False, checkpoint_name="da3-small_s0_a")
    _, ften = read_gguf(fixture_dir / FIXTURE_GGUF)
    _, ten = read_gguf(out)
    assert len(ten) == len(ften) == 279
    for (n, t, s, d), (fn, ft, fs, fd) in zip(ten, ften):
        assert (n, t, s) == (fn, ft, fs)
        assert d.tobytes() == fd.tobytes(), n


def test_extras_are_added_under_our_names(fixture_dir, cases):
    meta, ten = read_gguf(cases.model_gguf(cases.SMALL, "f32"))
    _, ften = read_gguf(fixture_dir / FIXTURE_GGUF)
    names = [n for n, *_ in ten]
    fixture_names = [n for n, *_ in ften]
    assert [n for n in names if n in set(fixture_names)] == fixture_names
    extra = [n for n in names if n not in set(fixture_names)]
    assert extra and all(n.startswith("cam_enc.") or re.match(r"head\.scratch\.(rn\d_aux|out1_aux|out2[ab]?_aux)", n)
                         for n in extra)
    assert {"cam_enc.trunk.3.attn.qkv.weight", "cam_enc.pose_branch.fc1.weight", "cam_enc.trunk_norm.bias",
            "head.scratch.out2_aux_ln.weight", "head.scratch.out1_aux.4.bias", "head.scratch.rn4_aux.rc2.c1.weight",
            "head.scratch.out2b_aux.weight"} <= set(extra)
    assert "head.scratch.rn4_aux.rc1.c1.weight" not in names
    assert meta["depthanything3.head.has_aux"][1] is True
    assert meta["depthanything3.has_cam_enc"][1] is True
    assert meta["depthanything3.cam_enc.num_heads"][1] == 16
    assert meta["depthanything3.preset"][1] == "da3-small"
    assert meta["depthanything3.checkpoint_name"][1] == "da3-small_s0"


# ---------------------------------------------------------------- values and types

def test_f32_values_equal_the_safetensors(cases, small_state):
    _, ten = read_gguf(cases.model_gguf(cases.SMALL, "f32"))
    by_name = {n: (t, s, d) for n, t, s, d in ten}
    specs = [s for s in conv.expected_tensors("da3-small") if s.name]
    assert len(by_name) == len(specs) == 395
    for spec in specs:
        t, shape, data = by_name[spec.name]
        assert t == "F32"
        assert shape == list(reversed(spec.out_shape))
        key = "model." + spec.key
        src = small_state[key] if key in small_state else small_state["model." + spec.shared[0]]
        np.testing.assert_array_equal(data.reshape(spec.shape), src, err_msg=spec.name)


@pytest.mark.parametrize("wtype,qname,fallback", [("q8_0", "Q8_0", "F16"), ("q4_k", "Q4_K", "Q8_0"),
                                                  ("f16", "F16", None)])
def test_quantization_follows_the_published_rule(cases, small_state, wtype, qname, fallback):
    meta, ten = read_gguf(cases.model_gguf(cases.SMALL, wtype))
    fell_back = set(meta.get(conv.KEY_QUANT_FALLBACK, ([], []))[1])
    specs = {s.name: s for s in conv.expected_tensors("da3-small") if s.name}
    n_quant = 0
    for name, t, shape, data in ten:
        rule = conv._is_quantized(name)
        if not rule:
            assert t == "F32", name
            continue
        n_quant += 1
        fits = shape[0] % {"q8_0": 32, "q4_k": 256, "f16": 1}[wtype] == 0
        assert t == (qname if fits else fallback), name
        assert (name in fell_back) == (not fits), name
        # dequantized values stay close to the source
        spec = specs[name]
        src = small_state["model." + spec.key]
        deq = gguf.quants.dequantize(data, gguf.GGMLQuantizationType[t]).reshape(src.shape)
        rel = np.sqrt(np.mean((deq - src) ** 2)) / np.sqrt(np.mean(src ** 2))
        assert rel < {"F16": 1e-3, "Q8_0": 1e-2, "Q4_K": 0.12}[t], (name, rel)
    # 12 blocks x 4 + cam_dec 5 + cam_enc 4 x 4
    assert n_quant == 12 * 4 + 5 + 16
    assert meta["general.file_type"][1] == {"f16": 1, "q8_0": 7, "q4_k": 14}[wtype]
    assert meta[conv.KEY_QUANT_RULE][1].startswith(wtype)
    if wtype == "q4_k":
        assert "vit.blk.0.attn_qkv.weight" in fell_back and "vit.blk.0.mlp_fc2.weight" not in fell_back


def test_q4_k_quantizer_roundtrip():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, 512)) * 0.05).astype(np.float32)
    x[1] = 0.0
    x[2, :256] = 0.25
    q = conv.quantize_q4_k(x)
    assert q.shape == (8, 2 * 144) and q.dtype == np.uint8
    d = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q4_K)
    assert np.all(d[1] == 0)
    np.testing.assert_allclose(d[2, :256], 0.25, rtol=2e-3)
    rel = np.sqrt(np.mean((d - x) ** 2)) / np.sqrt(np.mean(x ** 2))
    assert rel < 0.08


# ---------------------------------------------------------------- completeness errors

def _snapshot_variant(reference, cases, tmp_path, **kw):
    return reference.save_snapshot(cases.torch_model(cases.SMALL), tmp_path / "snap", **kw)


def test_missing_tensor_is_named(reference, cases, tmp_path):
    snap = _snapshot_variant(reference, cases, tmp_path, drop=["model.backbone.pretrained.blocks.7.ls2.gamma"])
    with pytest.raises(ModelFormatError, match=r"missing tensor 'model\.backbone\.pretrained\.blocks\.7\.ls2\.gamma'"):
        conv.convert(snap, tmp_path / "x.gguf")
    assert not list(tmp_path.glob("x.gguf*"))


def test_unexpected_tensor_is_named(reference, cases, tmp_path):
    import torch
    snap = _snapshot_variant(reference, cases, tmp_path, extra={"model.head.scratch.mystery.weight": torch.zeros(3)})
    with pytest.raises(ModelFormatError, match=r"unexpected tensor 'model\.head\.scratch\.mystery\.weight'"):
        conv.convert(snap, tmp_path / "x.gguf")


def test_misshaped_tensor_is_named(reference, cases, tmp_path):
    import torch
    snap = _snapshot_variant(reference, cases, tmp_path, drop=["model.cam_dec.fc_t.bias"],
                             extra={"model.cam_dec.fc_t.bias": torch.zeros(4)})
    with pytest.raises(ModelFormatError, match=r"model\.cam_dec\.fc_t\.bias' has shape \[4\], expected \[3\]"):
        conv.convert(snap, tmp_path / "x.gguf")


def test_shared_aux_layernorm_is_stored_once_with_aliases(small_snapshot, small_state, cases):
    header_len = int(np.frombuffer((small_snapshot / "model.safetensors").read_bytes()[:8], "<u8")[0])
    header = json.loads((small_snapshot / "model.safetensors").read_bytes()[8:8 + header_len])
    ln = "model.head.scratch.output_conv2_aux.{}.2.weight"
    assert ln.format(0) in small_state and ln.format(3) not in small_state
    assert header["__metadata__"][ln.format(3)] == ln.format(0)
    _, ten = read_gguf(cases.model_gguf(cases.SMALL, "f32"))
    data = {n: d for n, _, _, d in ten}
    np.testing.assert_array_equal(data["head.scratch.out2_aux_ln.weight"], small_state[ln.format(0)])


def test_shared_layernorm_without_alias_metadata(reference, cases, tmp_path):
    """A file that stores the shared LayerNorm once but lacks the alias entries converts."""
    snap = _snapshot_variant(reference, cases, tmp_path)
    from safetensors.numpy import load_file, save_file
    tensors = load_file(str(snap / "model.safetensors"))
    save_file(tensors, str(snap / "model.safetensors"), metadata={"format": "pt"})
    rep = conv.convert(snap, tmp_path / "x.gguf", type="f32")
    assert "head.scratch.out2_aux_ln.weight" in rep.types


# ---------------------------------------------------------------- input errors, CLI

def test_input_errors(tmp_path):
    with pytest.raises(ModelNotFoundError):
        conv.convert(tmp_path / "nope", tmp_path / "x.gguf")
    with pytest.raises(FileNotFoundError, match="config.json"):
        conv.convert(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="invalid JSON"):
        conv.convert(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "config.json").write_text(json.dumps({"model_name": "da3-huge"}))
    with pytest.raises(ModelFormatError, match="da3-huge"):
        conv.convert(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "config.json").write_text(json.dumps({"model_name": "da3-small"}))
    with pytest.raises(ModelNotFoundError, match="model.safetensors"):
        conv.convert(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(ModelFormatError, match="safetensors"):
        conv.convert(tmp_path, tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="q5_k"):
        conv.convert(tmp_path, tmp_path / "x.gguf", type="q5_k")


def test_shard_paths_stay_inside_the_snapshot(tmp_path):
    """Issue 19: model.safetensors.index.json entries that are absolute or contain '..' were
    opened (a system file was read); they are refused before anything is opened."""
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "config.json").write_text(json.dumps({"model_name": "da3-small"}))
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    for entry in ("/etc/passwd", str(outside), "../outside.safetensors", "a/../../outside.safetensors",
                  "C:\\x.safetensors", "", 5):
        (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": entry}}))
        with pytest.raises(ModelFormatError, match="not a relative path inside the snapshot folder"):
            conv.convert(snap, tmp_path / "x.gguf")
    # a shard in a subfolder of the snapshot is fine (reaches the missing-file check)
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "sub/m-1.safetensors"}}))
    with pytest.raises(ModelNotFoundError, match="m-1.safetensors"):
        conv.convert(snap, tmp_path / "x.gguf")


def test_cli(small_snapshot, tmp_path, capsys):
    out = tmp_path / "cli.gguf"
    assert conv.main([str(small_snapshot), str(out), "--type", "q8_0", "--no-extras"]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    meta, ten = read_gguf(out)
    assert len(ten) == 279 and meta["general.file_type"][1] == 7
    assert conv.main([str(tmp_path / "missing"), str(out)]) == 2
    assert "error" in capsys.readouterr().err


def test_module_entry_point_and_da3cpp_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "depth_anything_cpp.convert", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "SNAPSHOT_DIR" in r.stdout
    from depth_anything_cpp import cli
    assert cli.main(["convert", str(tmp_path / "missing"), str(tmp_path / "o.gguf")]) == 2


# ---------------------------------------------------------------- other presets, reduced depth

@pytest.mark.slow
@pytest.mark.parametrize("case", ["mono_d4", "nested_d4"])
def test_reduced_presets_convert_completely(cases, case):
    mid = cases.CASES_BY_NAME[case].model
    meta, ten = read_gguf(cases.model_gguf(mid, "f32"))
    specs = [s for s in conv.expected_tensors(mid.preset, overrides=mid.overrides) if s.name]
    assert [(n, s) for n, _, s, _ in ten] == [(s.name, list(reversed(s.out_shape))) for s in specs]
    if mid.preset == "da3mono-large":
        assert "head.scratch.sky_out2b.weight" in {n for n, *_ in ten}
        assert meta["depthanything3.head.output_dim"][1] == 1 and meta["depthanything3.head.pos_embed"][1] is False
        assert "depthanything3.cam.dim_in" not in meta
    else:
        names = {n for n, *_ in ten}
        assert {"m_vit.blk.3.mlp_fc1.weight", "m_head.scratch.sky_out2a.weight", "gs.merger.2.weight",
                "vit.blk.3.mlp_w12.weight", "cam_enc.trunk.0.attn.qkv.weight"} <= names
        assert meta["depthanything3.m_vit.depth"][1] == 4 and meta["depthanything3.vit.ffn_type"][1] == "swiglu"
        assert meta["depthanything3.gs.output_dim"][1] == 38
