"""Ray Data scale-out (depth_anything_cpp.ray_data): the example on a local 2-CPU Ray
cluster writes Parquet whose values equal direct DepthAnything3 inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray[data] (the 'ray' extra) is not installed")
pytest.importorskip("ray.data", reason="ray[data] (the 'ray' extra) is not installed")

from conftest import DATA_DIR, FIXTURE_DIR  # noqa: E402

import depth_anything_cpp  # noqa: E402
from depth_anything_cpp import DepthAnything3  # noqa: E402
from depth_anything_cpp.ray_data import DepthPredictor, actor_cpus  # noqa: E402

MODEL = FIXTURE_DIR / "da3-small-rand-f16.gguf"
IMAGES = sorted((DATA_DIR / "da3_examples").glob("*.png")) + sorted((DATA_DIR / "metric3d/data/nyu_demo/rgb").glob("*.jpg"))[:2]
RES = 140


@pytest.fixture(scope="module")
def local_ray():
    if not MODEL.exists() or len(IMAGES) < 3:
        pytest.skip(f"fixture model or shared images missing ({MODEL}, {DATA_DIR})")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             # the workers import the package this process imported (source tree or installed)
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(depth_anything_cpp.__file__).resolve().parents[1])}})
    try:
        yield
    finally:
        ray.shutdown()


def test_predictor_outside_ray_columns_and_errors(tmp_path):
    pred = DepthPredictor(str(MODEL), n_threads=1, process_res=RES, export_dir=str(tmp_path),
                          export_format="mini_npz")
    batch = {"path": np.array([str(IMAGES[0]), str(tmp_path / "missing.png")], object)}
    out = pred(batch)
    direct = DepthAnything3.from_file(MODEL, n_threads=1).inference([IMAGES[0]], process_res=RES)
    np.testing.assert_array_equal(out["depth"][0], direct.depth[0])
    assert out["depth"][1].shape == (0, 0) and "missing.png" in out["error"][1] and out["error"][0] == ""
    assert list(out["export_paths"][0]) == [str(tmp_path / IMAGES[0].stem / "exports/mini_npz/results.npz")]
    assert actor_cpus(3) == 3  # outside Ray: the default


def test_example_parquet_equals_direct_inference(local_ray, tmp_path):
    from depth_anything_cpp.ray_data import run_parquet as run
    out = tmp_path / "parquet"
    stats = run(str(MODEL), [str(p) for p in IMAGES], str(out), actors=2, process_res=RES)
    assert stats["rows"] == len(IMAGES)
    rows = {r["path"]: r for r in ray.data.read_parquet(str(out)).take_all()}
    assert len(list(out.glob("*.parquet"))) >= 1 and len(rows) == len(IMAGES)
    model = DepthAnything3.from_file(MODEL, n_threads=1)
    for path in IMAGES:
        row = rows[next(k for k in rows if k.endswith(path.name))]
        ref = model.inference([path], process_res=RES)
        assert row["error"] == ""
        np.testing.assert_array_equal(np.asarray(row["depth"]), ref.depth[0])
        np.testing.assert_array_equal(np.asarray(row["conf"]), ref.conf[0])
        np.testing.assert_array_equal(np.asarray(row["extrinsics"]), ref.extrinsics[0])
        np.testing.assert_array_equal(np.asarray(row["intrinsics"]), ref.intrinsics[0])
        assert (row["width"], row["height"]) == (ref.depth.shape[2], ref.depth.shape[1])
