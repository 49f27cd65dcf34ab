"""Build helper scripts in cmake/: ggml fetch (index lookup, sha256, subtree, cache) and patches."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

CMAKE_DIR = Path(__file__).resolve().parents[1] / "cmake"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CMAKE_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sdist(path: Path) -> str:
    """A fake sdist with a vendored ggml subtree plus files that must not be extracted."""
    files = {
        "pkg-1.0/setup.py": b"print('not ggml')\n",
        "pkg-1.0/vendor/ggml/CMakeLists.txt": b"set(GGML_VERSION_MAJOR 0)\n",
        "pkg-1.0/vendor/ggml/include/ggml.h": b"/* ggml */\n",
        "pkg-1.0/vendor/ggml-other/x.txt": b"prefix lookalike\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_index(tmp_path, monkeypatch):
    fetch = _load("fetch_ggml")
    files = tmp_path / "index" / "files"
    files.mkdir(parents=True)
    sha = _sdist(files / "pkg-1.0.tar.gz")
    page = tmp_path / "index" / "simple" / "fake-pkg"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        f'<html><body><a href="../../files/pkg-1.0.tar.gz#sha256={sha}">pkg-1.0.tar.gz</a></body></html>')
    spec = {"project": "fake-pkg", "filename": "pkg-1.0.tar.gz", "sha256": sha,
            "url": "file:///nonexistent/pkg-1.0.tar.gz", "subtree": "pkg-1.0/vendor/ggml",
            "ggml_version": "0.0.1"}
    monkeypatch.setitem(fetch.PROVIDERS, "fake", spec)
    # file:// index; the real pypi.org fallback is made unreachable so the test stays offline
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "index" / "simple").as_uri() + "/")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("DA3CPP_CACHE_DIR", str(tmp_path / "cache"))
    real_find = fetch.find_on_index
    monkeypatch.setattr(fetch, "find_on_index",
                        lambda index, *a: None if index.startswith("https://") else real_find(index, *a))
    return fetch, spec, tmp_path


def test_fetch_extracts_only_the_ggml_subtree_and_caches(fake_index):
    fetch, spec, tmp = fake_index
    dest = fetch.fetch("fake")
    assert dest.parent == tmp / "cache"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        ".da3cpp-sdist-sha256", "CMakeLists.txt", "include/ggml.h"]
    assert (dest / ".da3cpp-sdist-sha256").read_text().strip() == spec["sha256"]
    assert not (tmp / "cache" / spec["filename"]).exists()  # the sdist is not kept
    # cached: works with the index gone
    for f in (tmp / "index").rglob("*.tar.gz"):
        f.unlink()
    assert fetch.fetch("fake") == dest


def test_fetch_rejects_a_wrong_sha256(fake_index, monkeypatch):
    fetch, spec, _ = fake_index
    monkeypatch.setitem(spec, "sha256", "0" * 64)
    with pytest.raises(SystemExit, match="sha256 mismatch"):
        fetch.fetch("fake")


_VK_SNIPPET = """
    std::vector<const char*> extensions;
    VkBool32 enable_best_practice = layer_settings;
    std::vector<vk::LayerSettingEXT> settings = {
        { "VK_LAYER_KHRONOS_validation", "validate_best_practices", vk::LayerSettingTypeEXT::eBool32, 1, &enable_best_practice },
    };
    vk::LayerSettingsCreateInfoEXT layer_setting_info(settings);
    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions, &layer_setting_info);
    vk_instance.instance = vk::createInstance(instance_create_info);
"""


def test_patch_guards_vulkan_layer_settings_and_adds_pc_in(tmp_path):
    patch = _load("patch_ggml")
    vk = tmp_path / "src" / "ggml-vulkan" / "ggml-vulkan.cpp"
    vk.parent.mkdir(parents=True)
    vk.write_text(_VK_SNIPPET)
    assert patch.main(["patch_ggml.py", str(tmp_path)]) == 0
    text = vk.read_text()
    assert "#if VK_HEADER_VERSION >= 261" in text
    old_headers = text.split("#else", 1)[1].split("#endif", 1)[0]
    assert "LayerSetting" not in old_headers
    assert "instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions);" in old_headers
    assert (tmp_path / "ggml.pc.in").read_text().startswith("prefix=@CMAKE_INSTALL_PREFIX@")
    assert patch.main(["patch_ggml.py", str(tmp_path)]) == 0  # idempotent
    assert vk.read_text() == text


_BARRIER_SNIPPET = """
void ggml_barrier(struct ggml_threadpool * tp) {
    int n_passed = atomic_load_explicit(&tp->n_barrier_passed, memory_order_relaxed);
    // wait for other threads
    while (atomic_load_explicit(&tp->n_barrier_passed, memory_order_relaxed) == n_passed) {
        ggml_thread_cpu_relax();
    }
}
"""


def test_patch_makes_thread_pool_barrier_yield(tmp_path):
    patch = _load("patch_ggml")
    cpu = tmp_path / "src" / "ggml-cpu" / "ggml-cpu.c"
    cpu.parent.mkdir(parents=True)
    cpu.write_text(_BARRIER_SNIPPET)
    assert patch.main(["patch_ggml.py", str(tmp_path)]) == 0
    text = cpu.read_text()
    assert "while (atomic_load_explicit(&tp->n_barrier_passed" not in text  # the pure spin is gone
    loop = text.split("for (int da3_spins", 1)[1]
    assert "ggml_thread_cpu_relax();" in loop and f"% {patch.BARRIER_SPINS} == 0" in loop
    assert "sched_yield();" in loop
    assert patch.main(["patch_ggml.py", str(tmp_path)]) == 0  # idempotent
    assert cpu.read_text() == text


# ---- CI's strict mode (tests/conftest.py, set by .ci/run) ----------------------------------------

_STRICT_CASES = '''
import pytest
from helpers import skip_platform

def test_skipped():
    pytest.skip("fixture missing")

def test_platform():
    skip_platform("x86 only")

def test_passes():
    pass
'''


@pytest.mark.parametrize("strict,expect_rc,expect", [("1", 1, "1 failed, 1 passed, 1 skipped"),
                                                     ("", 0, "1 passed, 2 skipped")])
def test_strict_mode_turns_skips_into_failures(tmp_path, strict, expect_rc, expect):
    import os
    import subprocess
    import sys

    tests_dir = Path(__file__).resolve().parent
    (tmp_path / "test_strict_cases.py").write_text(_STRICT_CASES)
    env = {**os.environ, "DA3CPP_TEST_STRICT": strict, "PYTHONPATH": str(tests_dir)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-c", os.devnull,
                        "--rootdir", str(tmp_path), "-p", "no:cacheprovider", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == expect_rc, r.stdout + r.stderr
    assert expect in r.stdout, r.stdout
