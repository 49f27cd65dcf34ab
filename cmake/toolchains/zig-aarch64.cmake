# zig-aarch64.cmake - cross-compile for aarch64 Linux, glibc 2.28 (manylinux_2_28_aarch64):
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/zig-aarch64.cmake ...
# cmake/wheel_aarch64.py adds the arm64 Python headers; ggml's build gets this file too.
# Set DA3CPP_AARCH64_SYSROOT (an arm64 root with libc6 and libstdc++, see wheel_aarch64.py) to
# run test programs under qemu-aarch64-static.
set(DA3_ZIG_TARGET aarch64-linux-gnu.2.28)
include("${CMAKE_CURRENT_LIST_DIR}/zig-common.cmake")
set(CMAKE_SYSTEM_PROCESSOR aarch64)
find_program(DA3_QEMU_AARCH64 qemu-aarch64-static)
if(DA3_QEMU_AARCH64 AND DEFINED ENV{DA3CPP_AARCH64_SYSROOT})
    set(CMAKE_CROSSCOMPILING_EMULATOR "${DA3_QEMU_AARCH64};-L;$ENV{DA3CPP_AARCH64_SYSROOT}")
endif()
