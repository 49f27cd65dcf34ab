"""Shared pytest fixtures: paths to ../shared, a cache for generated models and references.

- ``DA3CPP_SHARED``: the shared directory (default: ``../shared`` beside the repository).
- ``DA3CPP_TEST_CACHE``: where generated snapshots, GGUF files and reference outputs are
  cached (default ``tests/.cache``, which ignores itself in git). Entries are keyed by the
  sources that produce them, so a changed converter or harness regenerates them.

Markers: ``slow`` (large reference cases; run by default, deselect with ``-m "not slow"``).

``DA3CPP_TEST_STRICT=1`` (set by ``.ci/run``): a skipped test or test module is a failure,
unless its reason starts with ``platform:`` (``helpers.skip_platform``: a test that cannot apply
to this processor or OS). A missing core, reference package, fixture or data then fails the run
instead of shrinking it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = Path(os.environ.get("DA3CPP_SHARED", REPO.parent / "shared"))
FIXTURE_DIR = SHARED / "fixtures" / "da3-small-anchor-layout"
DATA_DIR = SHARED / "data"

if str(TESTS) not in sys.path:  # `import reference` from tests/reference
    sys.path.insert(0, str(TESTS))


def cache_root() -> Path:
    """The cache directory (created; a ``.gitignore`` inside keeps it out of git)."""
    root = Path(os.environ.get("DA3CPP_TEST_CACHE", TESTS / ".cache"))
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return root


#: rows (case, precision, views, depth max abs err / range, depth corr, camera rel err)
#: appended by test_parity and printed as a table at the end of the run
PARITY_ROWS: list = []


def pytest_terminal_summary(terminalreporter):
    if not PARITY_ROWS:
        return
    lines = ["| case (model) | weights | views | depth max abs err / range | depth corr | camera err |",
             "|---|---|---|---|---|---|"]
    for case, prec, views, err, corr, cam in PARITY_ROWS:
        lines.append(f"| {case} | {prec} | {views} | {err:.2e} | {corr:.7f} | {cam:.2e} |")
    terminalreporter.write_sep("=", "parity with the official PyTorch network (fp32)")
    for line in lines:
        terminalreporter.write_line(line)
    try:
        (cache_root() / "parity_table.md").write_text("\n".join(lines) + "\n")
    except OSError:
        pass


STRICT = os.environ.get("DA3CPP_TEST_STRICT", "") == "1"
PLATFORM_SKIP = "platform:"


def _strict_fail(rep) -> None:
    """In strict mode, turn a skip report (other than a platform skip) into a failure."""
    if not (STRICT and rep.skipped) or hasattr(rep, "wasxfail"):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    if reason.startswith("Skipped: "):
        reason = reason[len("Skipped: "):]
    if reason.startswith(PLATFORM_SKIP):
        return
    rep.outcome = "failed"
    rep.longrepr = f"skipped under DA3CPP_TEST_STRICT=1 (CI runs every test): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _strict_fail(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _strict_fail(outcome.get_result())


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: large reference cases (torch forward of da3-base, 3 views)")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared directory not found: {SHARED} (set DA3CPP_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def fixture_dir(shared_dir) -> Path:
    if not FIXTURE_DIR.is_dir():
        pytest.skip(f"fixture directory not found: {FIXTURE_DIR}")
    return FIXTURE_DIR


@pytest.fixture(scope="session")
def fixture_gguf(fixture_dir) -> Path:
    """The published-layout da3-small fixture GGUF (f16, seeded random weights)."""
    path = fixture_dir / "da3-small-rand-f16.gguf"
    if not path.is_file():
        pytest.skip(f"fixture model not found: {path}")
    return path


@pytest.fixture(scope="session")
def data_dir(shared_dir) -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return cache_root()


@pytest.fixture(scope="session")
def reference():
    """The reference harness (tests/reference); skips when torch/depth_anything_3 are absent."""
    pytest.importorskip("torch", reason="the reference harness needs torch")
    pytest.importorskip("depth_anything_3.model", reason="the reference harness needs depth_anything_3")
    pytest.importorskip("safetensors", reason="the reference harness needs safetensors")
    import reference as ref

    return ref
