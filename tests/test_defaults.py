"""One source per default, name and error class (issue #21 item 4): the C core's
*_default_params() and name tables are the source; the Python signatures that must spell a
default (the official ``inference`` surface) are checked equal to them here; every C status code
maps to an exception class by the binding's table, not by the message text."""

from __future__ import annotations

import ast
import errno
import re
from pathlib import Path

import numpy as np
import pytest

import depth_anything_cpp as da3
from depth_anything_cpp import api, errors, images, model
from depth_anything_cpp.api import INFERENCE_DEFAULTS, LOAD_DEFAULTS, DepthAnything3, Prediction, get_core

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "cpp" / "include" / "depth_anything.h"
core = get_core()


def _signature_defaults(fn) -> dict:
    return model._signature_defaults(fn)


def test_inference_defaults_are_the_c_defaults():
    c = core.InferParams()
    p = core.PointsParams()
    g = core.GlbParams()
    assert INFERENCE_DEFAULTS["process_res"] == c.process_res
    assert INFERENCE_DEFAULTS["process_res_method"] == c.resize_method.name
    assert INFERENCE_DEFAULTS["ref_view_strategy"] == c.ref_view.name
    assert INFERENCE_DEFAULTS["use_ray_pose"] == bool(c.use_ray_pose)
    assert INFERENCE_DEFAULTS["compute_aux"] == bool(c.compute_aux)
    assert INFERENCE_DEFAULTS["align_to_input_ext_scale"] == bool(c.align_to_input_ext_scale)
    assert INFERENCE_DEFAULTS["max_image_pixels"] == c.max_image_pixels == images.DEFAULT_MAX_IMAGE_PIXELS
    assert INFERENCE_DEFAULTS["conf_thresh_percentile"] == p.conf_thresh_percentile
    assert INFERENCE_DEFAULTS["num_max_points"] == p.num_max_points
    assert INFERENCE_DEFAULTS["show_cameras"] == bool(g.show_cameras)


def test_points_defaults_are_the_c_defaults():
    p = core.PointsParams()
    d = _signature_defaults(Prediction.points)
    for name in ("conf_thresh", "conf_thresh_percentile", "ensure_thresh_percentile", "sky_thresh",
                 "num_max_points", "seed"):
        assert d[name] == getattr(p, name), name
    assert d["remove_sky"] == bool(p.remove_sky)
    # the export formats' point options (glb, ply, colmap) are the same defaults
    from depth_anything_cpp.exports.scene import POINT_OPTIONS
    for name in ("conf_thresh", "conf_thresh_percentile", "ensure_thresh_percentile", "num_max_points", "seed"):
        assert POINT_OPTIONS[name] == getattr(p, name), name
    assert POINT_OPTIONS["remove_sky"] == bool(p.remove_sky)
    # the binding's keywords are the C defaults too
    sig = core.points.__doc__.splitlines()[0]
    assert f"num_max_points: typing.SupportsInt | typing.SupportsIndex = {p.num_max_points}" in sig or \
        f"num_max_points: int = {p.num_max_points}" in sig


def test_load_defaults_are_the_c_defaults():
    c = core.ContextParams()
    for fn in (DepthAnything3.from_file, DepthAnything3.from_pretrained, DepthAnything3.__init__):
        d = _signature_defaults(fn)
        assert d["backend"] == core.BackendKind(c.backend).name
        assert d["device"] == c.device
        assert d["precision"] == core.Precision(c.precision).name
        assert d["n_threads"] is None and c.n_threads == 0  # None -> 0: the core's physical-core count
    assert LOAD_DEFAULTS["backend"] == core.BackendKind(c.backend).name


def test_names_are_the_c_names():
    assert tuple(api.PROCESS_RES_METHODS) == tuple(core.ResizeMethod.__members__)
    assert tuple(api.REF_VIEW_STRATEGIES) == tuple(core.RefViewStrategy.__members__)
    assert set(api.BACKENDS) == set(core.BackendKind.__members__)
    assert tuple(api.PRECISIONS) == tuple(core.Precision.__members__)
    assert tuple(api.PROCESS_RES_RANGE) == tuple(core.process_res_range)
    # the binding converts by the C names: an unknown one is refused naming the argument and the names
    with pytest.raises(ValueError, match=r"^method: expected one of 'upper_bound_resize', "
                                         r"'lower_bound_resize', got 'bilinear'$"):
        core.preprocess([np.zeros((20, 20, 3), np.uint8)], method="bilinear")


def _header_statuses() -> dict:
    text = HEADER.read_text()
    return {name: int(v) for name, v in re.findall(r"\b(DA3_(?:OK|ERR_\w+))\s*=\s*(\d+)", text)}


def test_every_status_maps_to_an_exception_class():
    statuses = _header_statuses()
    assert len(statuses) >= 10 and statuses["DA3_OK"] == 0
    for name, code in statuses.items():
        if name == "DA3_OK":
            continue
        cls = core.status_exception(code)
        assert isinstance(cls, type) and issubclass(cls, Exception), name
        assert cls is not RuntimeError, f"{name} has no entry in the binding's status table"
    expect = {"DA3_ERR_INVALID_ARGUMENT": ValueError, "DA3_ERR_IO": errors.ModelLoadError,
              "DA3_ERR_FORMAT": errors.ModelFormatError, "DA3_ERR_MISSING_TENSOR": errors.ModelFormatError,
              "DA3_ERR_UNSUPPORTED": errors.UnsupportedError, "DA3_ERR_OUT_OF_MEMORY": MemoryError,
              "DA3_ERR_BACKEND": errors.BackendError, "DA3_ERR_INTERNAL": errors.BackendError,
              "DA3_ERR_NON_FINITE": errors.NonFiniteOutputError}
    for name, cls in expect.items():
        assert core.status_exception(statuses[name]) is cls, name
    io = statuses["DA3_ERR_IO"]
    assert core.status_exception(io, errno.ENOENT) is errors.ModelNotFoundError
    # file outputs (GLB, COLMAP): the OSError subclass of the errno
    assert core.status_exception(io, errno.ENOENT, True) is FileNotFoundError
    assert core.status_exception(io, errno.EACCES, True) is PermissionError
    assert core.status_exception(io, errno.ENOTDIR, True) is NotADirectoryError
    assert core.status_exception(io, 0, True) is OSError
    assert core.status_exception(statuses["DA3_ERR_FORMAT"], 0, True) is errors.ModelFormatError


def test_errors_come_from_the_status_not_the_message(tmp_path):
    with pytest.raises(errors.ModelNotFoundError) as missing:
        core.Model(str(tmp_path / "nope.gguf"))
    assert isinstance(missing.value, FileNotFoundError) and isinstance(missing.value, da3.DA3Error)
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(errors.ModelLoadError) as info:
        core.Model(str(tmp_path / "dir.gguf"))
    assert not isinstance(info.value, errors.ModelNotFoundError)


def test_exception_module_imports_nothing_of_the_package():
    # the compiled core imports depth_anything_cpp._errors; it must not pull in the facade
    tree = ast.parse((ROOT / "python" / "depth_anything_cpp" / "_errors.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in imports)
    from depth_anything_cpp import _errors

    for name in errors.__all__:
        assert getattr(errors, name) is getattr(_errors, name) is getattr(da3, name)
    # the binding names no facade module
    for src in (ROOT / "src").glob("*.cpp"):
        assert "depth_anything_cpp.errors" not in src.read_text(), src.name
