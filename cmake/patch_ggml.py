"""Build-time compatibility patches for a ggml source tree (applied to a private copy).

Usage: python patch_ggml.py <ggml_source_dir>

Patches (idempotent, each guarded so it is a no-op where not needed):
  * ggml-vulkan.cpp: guard the VK_EXT_layer_settings block (only used with
    GGML_VULKAN_VALIDATE) behind VK_HEADER_VERSION >= 261, so ggml-vulkan compiles
    against older Vulkan headers such as Debian bookworm's 1.3.239.
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
    pc_in = root / "ggml.pc.in"
    if not pc_in.exists():
        pc_in.write_text(PC_IN, encoding="utf-8")
        print("patch_ggml: ggml.pc.in: written (missing from this source)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
