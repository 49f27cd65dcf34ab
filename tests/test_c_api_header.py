"""The public C header (cpp/include/depth_anything.h) compiles as strict C."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER_DIR = ROOT / "cpp" / "include"
SOURCE = ROOT / "tests" / "c_api_compiles.c"


def _c_compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler")
    return cc


@pytest.mark.parametrize("std", ["c99", "c11"])
def test_header_compiles_as_strict_c(std, tmp_path):
    cmd = [_c_compiler(), f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pedantic-errors",
           "-I", str(HEADER_DIR), "-c", str(SOURCE), "-o", str(tmp_path / "c_api.o")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c_api.o").stat().st_size > 0


def test_header_compile_check_detects_errors(tmp_path):
    # the check above is real: a C++-only construct in the header must fail it
    bad = tmp_path / "include"
    bad.mkdir()
    text = (HEADER_DIR / "depth_anything.h").read_text()
    (bad / "depth_anything.h").write_text(text + "\nnamespace da3 {}\n")
    cmd = [_c_compiler(), "-std=c99", "-pedantic-errors", "-I", str(bad), "-c", str(SOURCE),
           "-o", str(tmp_path / "bad.o")]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode != 0
