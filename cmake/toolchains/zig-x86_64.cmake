# zig-x86_64.cmake - x86-64 Linux, glibc 2.28 (manylinux_2_28_x86_64), libc++ linked statically:
#   python cmake/build_wheels.py --arch x86_64 --out dist   (or cmake -DCMAKE_TOOLCHAIN_FILE=...)
# The build machine runs the results (ggml's vulkan-shaders-gen is built with the host compiler).
# zig's baseline for an explicit target is plain x86-64 (SSE2); the x86 levels add their -m flags.
set(DA3_ZIG_TARGET x86_64-linux-gnu.2.28)
include("${CMAKE_CURRENT_LIST_DIR}/zig-common.cmake")
set(CMAKE_SYSTEM_PROCESSOR x86_64)
# binutils' strip handles x86-64 ELF (zig has no strip)
find_program(CMAKE_STRIP NAMES strip llvm-strip)
# Debian/Ubuntu multiarch library dir, which zig's clang does not report: find_package(Vulkan)
# needs the loader's file to exist (the modules only take its headers, cmake/Da3Ggml.cmake)
set(CMAKE_LIBRARY_ARCHITECTURE x86_64-linux-gnu)
