"""The converter and the core agree on the GGUF schema: the converter takes the presets, groups,
metadata keys and tensor-name parts from the core (da3_gguf_schema_json); its per-preset configs, tensor groups and
kind markers are checked against the core's; the core resolves a file's preset from metadata,
with the documented published-layout fallback."""

from __future__ import annotations

import json
import re

import pytest

gguf = pytest.importorskip("gguf")

import depth_anything_cpp  # noqa: E402
from depth_anything_cpp import DepthAnything3, gguf_schema  # noqa: E402
from depth_anything_cpp.errors import ModelFormatError  # noqa: E402
from helpers import rewrite_gguf  # noqa: E402

META = gguf_schema.ARCH + "."


@pytest.fixture(scope="module")
def core_schema() -> dict:
    return json.loads(depth_anything_cpp._core.gguf_schema_json())


def _converter_kind(preset: str) -> str:
    branches = gguf_schema.PRESETS[preset]
    if len(branches) > 1:
        return "nested"
    (_, net), = branches.values()
    return {"dualdpt": "anyview", "dpt": "dpt_sky"}[net.head.kind]


def test_presets_and_kinds_agree(core_schema):
    assert core_schema["arch"] == gguf_schema.ARCH
    assert set(core_schema["presets"]) == set(gguf_schema.PRESETS)
    for name, entry in core_schema["presets"].items():
        assert entry["kind"] == _converter_kind(name), name
        main = next(net for role, net in gguf_schema.PRESETS[name].values() if role == "main")
        assert entry["embed_dim"] == main.vit.embed_dim, name
    assert [n for n, e in core_schema["presets"].items() if e["metric_scaling"]] == ["da3metric-large"]
    assert META + core_schema["keys"]["preset"] == gguf_schema.KEY_PRESET
    assert META + core_schema["keys"]["checkpoint"] == gguf_schema.KEY_CHECKPOINT


def test_every_core_tensor_part_is_written(core_schema):
    """Each tensor-name part the core's loaders spell appears in a name the converter writes
    (the converter builds its names from these parts: a stale or misspelt part shows here)."""
    names = [s.name for p in gguf_schema.PRESETS for s in gguf_schema.expected_tensors(p) if s.name]
    text = "\n".join(names)
    for group, parts in core_schema["tensor_parts"].items():
        for upstream, part in parts.items():
            # a whole name component, or a piece of one between digits (layer<k>_rn, rc<u>, rn<k>_aux)
            assert re.search(rf"(^|[.\d]){re.escape(part)}($|[.\d])", text, re.M), (group, upstream, part)


# the key table of each group role (the metric branch has the ViT / head keys)
_KEY_TABLE = {"vit": "vit", "metric_vit": "vit", "head": "head", "metric_head": "head", "cam": "cam",
              "cam_enc": "cam_enc", "gs": "gs", "img": "img"}


def test_metadata_keys_are_the_cores(core_schema):
    """Every metadata key the converter writes (every preset, with and without extras) is one of
    the core's (a file key, or a group's prefix + a key of its table), and every core key is
    written by some preset: a key renamed on one side only shows here."""
    assert set(core_schema["group_roles"]) == set(_KEY_TABLE)
    core = {META + k for k in core_schema["keys"].values()}
    for role, table in _KEY_TABLE.items():
        core |= {META + core_schema["group_roles"][role] + k for k in core_schema["metadata_keys"][table].values()}
    written = {k for p in gguf_schema.PRESETS for extras in (True, False)
               for k, _, _ in gguf_schema._metadata(p, "ckpt", extras)}
    written |= {gguf_schema.KEY_QUANT_RULE, gguf_schema.KEY_QUANT_FALLBACK}   # written by convert()
    assert written <= core, sorted(written - core)[:5]
    # the metric branch (m_vit., m_head.) writes a subset of its tables; every other core key is written
    unwritten = {k for k in core - written if not k.startswith(META + core_schema["group_roles"]["metric_vit"])
                 and not k.startswith(META + core_schema["group_roles"]["metric_head"])}
    assert not unwritten, sorted(unwritten)[:5]
    assert set(core_schema["groups"]) <= set(core_schema["group_roles"].values())


@pytest.mark.parametrize("preset", list(gguf_schema.PRESETS))
def test_every_written_name_is_in_a_core_group(core_schema, preset):
    names = [s.name for s in gguf_schema.expected_tensors(preset) if s.name]
    groups = tuple(core_schema["groups"])
    outside = [n for n in names if not n.startswith(groups)]
    assert not outside, outside[:5]
    markers, kind = core_schema["markers"], core_schema["presets"][preset]["kind"]
    # the tensors that give a file its kind in the core are written exactly for that kind
    assert (markers["sky"] in names) == (kind == "dpt_sky"), preset
    assert any(n.startswith(markers["nested"]) for n in names) == (kind == "nested"), preset
    assert (markers["camera_decoder"] in names) == (kind != "dpt_sky"), preset


@pytest.mark.parametrize("name", ["vit.blk.0.attn_qkv.weight", "head.scratch.rn2.out.weight", "cam.fc_fov.weight"])
def test_missing_required_tensor_is_named(tmp_path, fixture_gguf, name):
    path = rewrite_gguf(fixture_gguf, tmp_path / "missing.gguf", drop=(name,))
    with pytest.raises(ModelFormatError, match=f"missing.gguf.*{name}|{name}.*missing.gguf"):
        DepthAnything3.from_file(path, n_threads=1)


def test_published_file_without_preset_loads_by_width(fixture_gguf):
    r = gguf.GGUFReader(fixture_gguf)
    assert gguf_schema.KEY_PRESET not in r.fields   # the published layout has no preset key
    assert DepthAnything3.from_file(fixture_gguf, n_threads=1).info["preset"] == "da3-small"


def _str(value: str):
    return (value, gguf.GGUFValueType.STRING, None)


def test_preset_from_metadata_must_be_known_and_match_the_tensors(tmp_path, fixture_gguf):
    path = rewrite_gguf(fixture_gguf, tmp_path / "unknown.gguf", kv={gguf_schema.KEY_PRESET: _str("da3-tiny")})
    with pytest.raises(ModelFormatError, match="unknown preset 'da3-tiny'.*da3metric-large"):
        DepthAnything3.from_file(path, n_threads=1)
    path = rewrite_gguf(fixture_gguf, tmp_path / "wrong.gguf", kv={gguf_schema.KEY_PRESET: _str("da3metric-large")})
    with pytest.raises(ModelFormatError, match=r"'da3metric-large' \(model kind dpt_sky\) does not match the tensors \(kind anyview\)"):
        DepthAnything3.from_file(path, n_threads=1)
    path = rewrite_gguf(fixture_gguf, tmp_path / "base.gguf", kv={gguf_schema.KEY_PRESET: _str("da3-base")})
    assert DepthAnything3.from_file(path, n_threads=1).info["preset"] == "da3-base"   # metadata wins over width


@pytest.mark.slow   # the reduced mono model of test_parity (built once, cached)
def test_published_dpt_file_needs_mono_or_metric_in_its_checkpoint(tmp_path, reference):
    from reference import make_cases

    mono = make_cases.model_gguf(make_cases.CASES_BY_NAME["mono_d4"].model, "f32")
    expected = {"DA3MONO-LARGE": "da3mono-large", "depth-anything/da3metric-large": "da3metric-large"}
    for checkpoint, preset in expected.items():
        path = rewrite_gguf(mono, tmp_path / "published.gguf", drop_kv=(gguf_schema.KEY_PRESET,),
                            kv={gguf_schema.KEY_CHECKPOINT: _str(checkpoint)})
        model = DepthAnything3.from_file(path, n_threads=1)
        assert model.info["preset"] == preset and bool(model.info["is_metric"]) == (preset == "da3metric-large")
        del model
    path = rewrite_gguf(mono, tmp_path / "unnamed.gguf", drop_kv=(gguf_schema.KEY_PRESET,),
                        kv={gguf_schema.KEY_CHECKPOINT: _str("my-large")})
    with pytest.raises(ModelFormatError, match="neither mono nor metric: set the key to da3mono-large or da3metric-large"):
        DepthAnything3.from_file(path, n_threads=1)


def test_loader_requires_every_tensor_the_converter_writes(tmp_path, fixture_gguf):
    """One tensor of each name pattern of the published layout (the converter's da3-small
    without extras, the fixture's tensors) left out: the core refuses the file, naming it."""
    names = [s.name for s in gguf_schema.expected_tensors("da3-small", extras=False) if s.name]
    assert set(names) == {t.name for t in gguf.GGUFReader(fixture_gguf).tensors}
    first_of_pattern = {}
    for name in names:
        first_of_pattern.setdefault(re.sub(r"\d+", "#", name), name)
    for name in first_of_pattern.values():
        path = rewrite_gguf(fixture_gguf, tmp_path / "missing.gguf", drop=(name,))
        with pytest.raises(ModelFormatError) as info:
            DepthAnything3.from_file(path, n_threads=1)
        assert name in str(info.value), name
