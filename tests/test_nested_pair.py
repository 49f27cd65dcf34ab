"""The nested giant + metric model given as two files (the published layout ships
da3nested-giant-large as a pair: an any-view giant file and a metric-large file).

The pair is made from the converter's one-file nested model (reduced depth, perturbed random
weights from tests/reference): its ``vit.*``/``head.*``/``cam.*`` part becomes the any-view
file and its ``m_vit.*``/``m_head.*`` part, renamed to ``vit.*``/``head.*``, the metric file,
each with the metadata a standalone file has. Loaded with ``metric_path`` the pair must give
exactly the outputs of the one nested file; files in the wrong order or of the wrong kinds
raise ModelFormatError naming both files and the expected order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from depth_anything_cpp import DepthAnything3  # noqa: E402
from depth_anything_cpp.errors import ModelFormatError, ModelNotFoundError  # noqa: E402

pytestmark = pytest.mark.slow   # builds (or reuses) the 1.6 GB reduced nested model of test_parity

META = "depthanything3."


def _write_gguf(dst: Path, reader, tensors, kv: dict) -> Path:
    """Write `dst` (atomically) with metadata `kv` {key: field} and `tensors` [(name, tensor)]."""
    tmp = dst.with_name(dst.name + f".part{os.getpid()}")
    w = gguf.GGUFWriter(str(tmp), arch=reader.fields["general.architecture"].contents())
    for key, field in kv.items():
        if isinstance(field, str):
            w.add_key_value(key, field, gguf.GGUFValueType.STRING)
        else:
            sub = field.types[1] if len(field.types) > 1 else None
            w.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    for name, t in tensors:
        w.add_tensor(name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, dst)
    return dst


def split_nested(nested: Path, anyview: Path, metric: Path) -> None:
    """The one-file nested GGUF -> an any-view file and a metric file (standalone layouts)."""
    r = gguf.GGUFReader(nested)
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.") and k != "general.architecture"}
    metric_prefixes = (META + "m_vit.", META + "m_head.")
    shared = (META + "arch", META + "checkpoint_name", META + "patch_size", META + "img.", "general.")
    any_kv = {k: f for k, f in fields.items() if not k.startswith(metric_prefixes)}
    any_kv[META + "preset"] = "da3-giant"
    met_kv = {k: f for k, f in fields.items() if k.startswith(shared)}
    for k, f in fields.items():
        if k.startswith(metric_prefixes):
            met_kv[k.replace(META + "m_", META, 1)] = f
    met_kv[META + "preset"] = "da3metric-large"
    any_t = [(t.name, t) for t in r.tensors if not t.name.startswith(("m_vit.", "m_head."))]
    met_t = [(t.name[2:], t) for t in r.tensors if t.name.startswith(("m_vit.", "m_head."))]
    _write_gguf(anyview, r, any_t, any_kv)
    _write_gguf(metric, r, met_t, met_kv)


@pytest.fixture(scope="module")
def nested_files(reference, tmp_path_factory):
    """(nested one-file GGUF, any-view file, metric file). The pair (1.6 GB, split in seconds)
    lives in a temporary folder removed after this module: tests/.cache does not keep it."""
    from reference import make_cases

    nested = make_cases.model_gguf(make_cases.CASES_BY_NAME["nested_d4"].model, "f32")
    d = tmp_path_factory.mktemp("pair")
    anyview, metric = d / "pair-anyview-f32.gguf", d / "pair-metric-f32.gguf"
    split_nested(nested, anyview, metric)
    yield nested, anyview, metric
    anyview.unlink()
    metric.unlink()


def _outputs(model: DepthAnything3, image) -> dict:
    pred = model.inference([image], process_res=252)
    return {k: np.array(getattr(pred, k)) for k in ("depth", "conf", "extrinsics", "intrinsics", "sky")
            if getattr(pred, k, None) is not None}


def test_pair_gives_the_nested_model_exactly(nested_files, data_dir):
    nested, anyview, metric = nested_files
    from PIL import Image

    image = np.asarray(Image.open(data_dir / "da3_examples" / "assets_examples_SOH_000.png").convert("RGB"))
    one = DepthAnything3.from_file(nested, n_threads=2)
    info_one = one.info
    ref = _outputs(one, image)
    del one
    pair = DepthAnything3.from_file(anyview, n_threads=2, metric_path=metric)
    info = pair.info
    out = _outputs(pair, image)
    del pair

    assert info["is_nested"] and info["is_metric"] and info["preset"] == "da3nested-giant-large"
    for key in ("embed_dim", "depth", "out_layers", "has_camera_decoder", "has_sky", "weight_type"):
        assert info[key] == info_one[key], key
    # the pair's weights are those of the one file (two buffers instead of one)
    assert abs(info["weights_bytes"] - info_one["weights_bytes"]) < 0.01 * info_one["weights_bytes"]
    assert set(out) == set(ref) and {"depth", "conf", "extrinsics", "intrinsics"} <= set(ref)
    assert np.isfinite(ref["depth"]).all() and ref["depth"].min() > 0
    for key in ref:
        np.testing.assert_array_equal(out[key], ref[key], err_msg=key)


def _check_pair_error(first: Path, second: Path, *needles: str) -> str:
    with pytest.raises(ModelFormatError) as info:
        DepthAnything3.from_file(first, n_threads=1, metric_path=second)
    msg = str(info.value)
    assert str(first) in msg and str(second) in msg, msg
    assert "any-view model" in msg and "first" in msg and "metric model" in msg and "second" in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


def test_pair_in_the_wrong_order(nested_files):
    _, anyview, metric = nested_files
    _check_pair_error(metric, anyview, "wrong order")


def test_pair_of_wrong_kinds(nested_files, fixture_gguf):
    nested, anyview, metric = nested_files
    # two metric files: the first is not an any-view model
    _check_pair_error(metric, metric, f"'{metric}' is a metric model, not an any-view model")
    # two any-view files: the second is not a metric model
    _check_pair_error(fixture_gguf, fixture_gguf, f"'{fixture_gguf}' is an any-view model, not a metric model")
    # a one-file nested model is loaded alone
    _check_pair_error(anyview, nested, "nested model", "not a metric model")


def test_pair_with_a_mono_model(tmp_path, nested_files):
    """da3mono-large has the same layout as the metric model but is not one."""
    _, anyview, metric = nested_files
    r = gguf.GGUFReader(metric)
    kv = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.") and k != "general.architecture"}
    kv[META + "preset"] = "da3mono-large"
    # the tensors do not matter for the kind check: keep the file small
    mono = _write_gguf(tmp_path / "mono.gguf", r,
                       [(t.name, t) for t in r.tensors if t.name.startswith("head.scratch.sky_out")], kv)
    _check_pair_error(anyview, mono, "mono model")


def test_pair_missing_metric_file(nested_files, tmp_path):
    _, anyview, _ = nested_files
    with pytest.raises(ModelNotFoundError, match="nope.gguf"):
        DepthAnything3.from_file(anyview, metric_path=tmp_path / "nope.gguf")


def test_core_pair_without_the_facade(nested_files):
    """The compiled core's Model(path, metric_path=...) maps the same error."""
    from depth_anything_cpp.api import get_core

    _, anyview, metric = nested_files
    with pytest.raises(ModelFormatError, match="wrong order"):
        get_core().Model(str(metric), n_threads=1, metric_path=str(anyview))


def test_cli_pair(nested_files, data_dir, tmp_path):
    """`da3cpp depth --model ANYVIEW --metric-model METRIC`: metric depth from the pair; the
    reversed pair stops with exit status 2 and the order message."""
    import subprocess
    import sys

    _, anyview, metric = nested_files
    image = data_dir / "da3_examples" / "assets_examples_SOH_000.png"
    cmd = [sys.executable, "-m", "depth_anything_cpp.cli", "depth", str(image), "--process-res", "140",
           "--threads", "2", "--out", str(tmp_path / "out")]
    ok = subprocess.run(cmd + ["--model", str(anyview), "--metric-model", str(metric)], capture_output=True,
                        text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    npz = np.load(tmp_path / "out" / "assets_examples_SOH_000.npz")
    assert npz["depth"].shape[-1] == 140 and np.isfinite(npz["depth"]).all() and npz["depth"].min() > 0
    bad = subprocess.run(cmd + ["--model", str(metric), "--metric-model", str(anyview)], capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and "wrong order" in bad.stderr, bad.stderr
