"""Build-time compatibility patches for a ggml source tree (applied to a private copy).

Usage: python patch_ggml.py <ggml_source_dir>

Patches (idempotent, each guarded so it is a no-op where not needed):
  * ggml-vulkan.cpp: guard the VK_EXT_layer_settings block (only used with
    GGML_VULKAN_VALIDATE) behind VK_HEADER_VERSION >= 261, so ggml-vulkan compiles
    against older Vulkan headers such as Debian bookworm's 1.3.239.
  * ggml-cpu.c: ggml's own thread pool (builds without OpenMP, e.g. the zig-built wheels)
    waits at every graph node's barrier in a pure spin loop; with more threads than free cores
    a waiter burns its time slice while the thread it waits for is descheduled (da3-small,
    8 threads on 2 cores: 21 s instead of 0.1 s). The wait now yields the CPU every
    BARRIER_SPINS spins (sched_yield: no cost when nothing else is runnable). OpenMP builds
    use `#pragma omp barrier` and are unaffected.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

MARK = "/* da3cpp: layer_settings guard */"

# The block from `VkBool32 enable_best_practice` up to the InstanceCreateInfo that
# chains &layer_setting_info (ggml 0.15.x and 0.25.x both have this shape).
_LAYER_BLOCK = re.compile(
    r"(?P<indent>[ \t]*)VkBool32 enable_best_practice = layer_settings;\n"
    r"(?P<body>.*?)"
    r"(?P<create>[ \t]*vk::InstanceCreateInfo instance_create_info\((?P<args>[^;]*?),\s*&layer_setting_info\);\n)",
    re.S,
)


def patch_vulkan(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if MARK in text:
        return "already patched"
    m = _LAYER_BLOCK.search(text)
    if m is None:
        if "LayerSettingsCreateInfoEXT" not in text:
            return "no layer_settings block (nothing to do)"
        raise SystemExit(f"patch_ggml: cannot find the VK_EXT_layer_settings block in {path}")
    ind = m.group("indent")
    replacement = (
        f"{ind}{MARK}\n"
        "#if VK_HEADER_VERSION >= 261\n"
        f"{ind}VkBool32 enable_best_practice = layer_settings;\n"
        f"{m.group('body')}{m.group('create')}"
        "#else\n"
        f"{ind}(void) layer_settings;\n"
        f"{ind}vk::InstanceCreateInfo instance_create_info({m.group('args')});\n"
        "#endif\n"
    )
    path.write_text(text[: m.start()] + replacement + text[m.end():], encoding="utf-8")
    return "patched"


BARRIER_MARK = "/* da3cpp: barrier yields */"
BARRIER_SPINS = 256
_BARRIER_WAIT = re.compile(
    r"(?P<indent>[ \t]*)while \(atomic_load_explicit\(&tp->n_barrier_passed, memory_order_relaxed\) == n_passed\) \{\n"
    r"[ \t]*ggml_thread_cpu_relax\(\);\n"
    r"[ \t]*\}\n")


def patch_barrier(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if BARRIER_MARK in text:
        return "already patched"
    m = _BARRIER_WAIT.search(text)
    if m is None:  # another ggml version: its barrier is left as it is
        return "no spin-wait barrier loop found (left as is)"
    ind = m.group("indent")
    replacement = (
        f"{ind}{BARRIER_MARK}\n"
        f"{ind}for (int da3_spins = 1; atomic_load_explicit(&tp->n_barrier_passed, memory_order_relaxed) == n_passed; da3_spins++) {{\n"
        f"{ind}    ggml_thread_cpu_relax();\n"
        f"{ind}    if (da3_spins % {BARRIER_SPINS} == 0) {{\n"
        f"{ind}        sched_yield();\n"
        f"{ind}    }}\n"
        f"{ind}}}\n"
    )
    path.write_text(text[: m.start()] + replacement + text[m.end():], encoding="utf-8")
    return "patched"


PC_IN = """prefix=@CMAKE_INSTALL_PREFIX@
exec_prefix=${prefix}
includedir=${prefix}/include
libdir=${prefix}/lib

Name: ggml
Description: tensor library (placeholder written by depth-anything-cpp's build)
Version: @GGML_VERSION@
Cflags: -I${includedir}
Libs: -L${libdir} -lggml -lggml-base
"""


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[1])
    vk = root / "src" / "ggml-vulkan" / "ggml-vulkan.cpp"
    if vk.is_file():
        print(f"patch_ggml: {vk.name}: {patch_vulkan(vk)}")
    cpu = root / "src" / "ggml-cpu" / "ggml-cpu.c"
    if cpu.is_file():
        print(f"patch_ggml: {cpu.name}: {patch_barrier(cpu)}")
    pc_in = root / "ggml.pc.in"
    if not pc_in.exists():
        pc_in.write_text(PC_IN, encoding="utf-8")
        print("patch_ggml: ggml.pc.in: written (missing from this source)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
