# gcc-aarch64.cmake - Debian's aarch64 cross GCC (apt: g++-aarch64-linux-gnu). Its binaries need
# glibc 2.34+ and libstdc++ (not manylinux_2_28): used for the aarch64 + CUDA check
# (.ci/jetson_cuda_check.sh), since nvcc takes GCC as host compiler, and the same GCC family as
# the on-device Jetson build. Wheels use zig-aarch64.cmake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CUDA_HOST_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
