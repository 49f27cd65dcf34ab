# zig-common.cmake - shared part of the zig toolchain files (zig-<arch>.cmake): zig's clang
# targeting an old glibc (manylinux), with libc++ linked statically. ref: ../../../shared/docs/cross-build.md
#
# Needs DA3_ZIG_TARGET (e.g. aarch64-linux-gnu.2.28) set by the including file. zig comes from
# the environment variable DA3CPP_ZIG (the zig executable) or else the `ziglang` Python package
# of the python3 on PATH. CC/CXX/AR/RANLIB are small wrapper scripts (CMake wants one program
# per tool), written once per target under ~/.cache/depth-anything-cpp/zig-wrappers/<target>.
if(NOT DA3_ZIG_TARGET)
    message(FATAL_ERROR "zig-common.cmake: set DA3_ZIG_TARGET before including it")
endif()
if(NOT DEFINED ENV{DA3CPP_ZIG})
    execute_process(COMMAND python3 -c "import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), 'zig'))"
                    OUTPUT_VARIABLE _zig OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
    if(NOT _rc EQUAL 0 OR NOT EXISTS "${_zig}")
        message(FATAL_ERROR "zig toolchain: set DA3CPP_ZIG to a zig executable or `pip install ziglang`")
    endif()
    set(ENV{DA3CPP_ZIG} "${_zig}")  # try_compile projects read this toolchain file again
endif()
set(DA3_ZIG "$ENV{DA3CPP_ZIG}")
include("${CMAKE_CURRENT_LIST_DIR}/../Da3WriteScript.cmake")
set(_wrap "$ENV{HOME}/.cache/depth-anything-cpp/zig-wrappers/${DA3_ZIG_TARGET}")
foreach(tool cc c++ ar ranlib)
    if(tool MATCHES "^c")
        set(body "#!/bin/sh\nexec \"${DA3_ZIG}\" ${tool} -target ${DA3_ZIG_TARGET} \"$@\"\n")
    else()
        set(body "#!/bin/sh\nexec \"${DA3_ZIG}\" ${tool} \"$@\"\n")
    endif()
    da3_write_script("${_wrap}/${tool}" "${body}")
endforeach()

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER "${_wrap}/cc")
set(CMAKE_CXX_COMPILER "${_wrap}/c++")
set(CMAKE_AR "${_wrap}/ar" CACHE FILEPATH "zig ar")
set(CMAKE_RANLIB "${_wrap}/ranlib" CACHE FILEPATH "zig ranlib")
# Da3Variants.cmake: zig CPU strings instead of GCC's -march spelling; no --exclude-libs (zig's
# linker rejects it): Python modules export only PyInit_* through a version script instead
set(DA3_ZIG_TOOLCHAIN ON)
set(_vs "${_wrap}/pymodule.map")
if(NOT EXISTS "${_vs}")
    file(WRITE "${_vs}" "{ global: PyInit_*; local: *; };\n")
endif()
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-Wl,--version-script=${_vs}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
