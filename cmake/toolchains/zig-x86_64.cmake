# zig-x86_64.cmake - x86-64 Linux, glibc >= 2.28 (manylinux_2_28), libc++ linked statically.
# Used by cmake/build_wheels.py --arch x86_64; not a cross build (the build machine runs the
# results, e.g. ggml's vulkan-shaders-gen). The x86 levels (x64/avx2/avx512) add their -m flags;
# zig's baseline for an explicit target is plain x86-64 (SSE2).
set(DA3_ZIG_TARGET x86_64-linux-gnu.2.28)
include("${CMAKE_CURRENT_LIST_DIR}/zig-common.cmake")
# binutils' strip handles x86-64 ELF (zig has no strip; `zig objcopy --strip-all` fails on aarch64)
find_program(CMAKE_STRIP NAMES strip llvm-strip)
# Debian/Ubuntu multiarch library dir: zig's clang does not report it, and find_package(Vulkan)
# needs the loader's file to exist (the modules only take its headers, cmake/Da3Ggml.cmake)
set(CMAKE_LIBRARY_ARCHITECTURE x86_64-linux-gnu)
