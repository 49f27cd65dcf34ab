# zig-common.cmake - compile with zig's clang for an old-glibc target (included by zig-<arch>.cmake).
#
# The including file sets DA3_ZIG_TARGET (a zig target with a glibc version, e.g.
# x86_64-linux-gnu.2.28) before including this one. zig comes from the `ziglang` package of the
# Python running the build ($DA3CPP_ZIG, else `<python> -m ziglang` located via $DA3CPP_PYTHON or
# python3 on PATH). zig links libc++ statically and links against stub glibc of the target version,
# so the binaries run on any glibc >= that version. It has no OpenMP runtime: build with
# DA3CPP_GGML_OPENMP=OFF (cmake/build_wheels.py does).
#
# Compilers are small wrapper scripts (CMake wants one executable per tool), written to
# $DA3CPP_CACHE_DIR/zig-wrappers/<target>/ (default ~/.cache/depth-anything-cpp); zig's own cache
# (libc++, glibc stubs: ~1 min per target to build once) goes to $ZIG_GLOBAL_CACHE_DIR, default
# <cache>/zig, so it survives build-directory deletions.
if(NOT DA3_ZIG_TARGET)
    message(FATAL_ERROR "zig-common.cmake: set DA3_ZIG_TARGET before including it")
endif()

if(DEFINED ENV{DA3CPP_CACHE_DIR})
    set(_da3_cache "$ENV{DA3CPP_CACHE_DIR}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
    set(_da3_cache "$ENV{XDG_CACHE_HOME}/depth-anything-cpp")
else()
    set(_da3_cache "$ENV{HOME}/.cache/depth-anything-cpp")
endif()

if(DEFINED ENV{DA3CPP_ZIG})
    set(_da3_zig "$ENV{DA3CPP_ZIG}")
else()
    set(_da3_py "$ENV{DA3CPP_PYTHON}")
    if(NOT _da3_py)
        find_program(_da3_py NAMES python3 python REQUIRED)
    endif()
    execute_process(
        COMMAND "${_da3_py}" -c "import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), 'zig'))"
        OUTPUT_VARIABLE _da3_zig OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _da3_rc)
    if(NOT _da3_rc EQUAL 0 OR NOT EXISTS "${_da3_zig}")
        message(FATAL_ERROR "zig-common.cmake: zig not found: `pip install ziglang` for ${_da3_py}, or set DA3CPP_ZIG")
    endif()
endif()

set(_da3_wrap "${_da3_cache}/zig-wrappers/${DA3_ZIG_TARGET}")
set(_da3_zig_cache "${_da3_cache}/zig")
# name -> zig subcommand (+ target for the compilers)
foreach(_da3_tool cc c++ ar ranlib)
    if(_da3_tool MATCHES "^(cc|c\\+\\+)$")
        set(_da3_cmd "${_da3_tool} -target ${DA3_ZIG_TARGET}")
    else()
        set(_da3_cmd "${_da3_tool}")
    endif()
    set(_da3_text "#!/bin/sh\n: \"\${ZIG_GLOBAL_CACHE_DIR:=${_da3_zig_cache}}\"\n: \"\${ZIG_LOCAL_CACHE_DIR:=\$ZIG_GLOBAL_CACHE_DIR}\"\nexport ZIG_GLOBAL_CACHE_DIR ZIG_LOCAL_CACHE_DIR\nexec \"${_da3_zig}\" ${_da3_cmd} \"$@\"\n")
    set(_da3_old "")
    if(EXISTS "${_da3_wrap}/${_da3_tool}")
        file(READ "${_da3_wrap}/${_da3_tool}" _da3_old)
    endif()
    if(NOT _da3_old STREQUAL _da3_text)  # rewrite only on change: keeps timestamps (no rebuilds)
        file(WRITE "${_da3_wrap}/${_da3_tool}" "${_da3_text}")
        file(CHMOD "${_da3_wrap}/${_da3_tool}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
             GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    endif()
endforeach()

set(CMAKE_C_COMPILER "${_da3_wrap}/cc")
set(CMAKE_CXX_COMPILER "${_da3_wrap}/c++")
set(CMAKE_AR "${_da3_wrap}/ar" CACHE FILEPATH "zig ar")
set(CMAKE_RANLIB "${_da3_wrap}/ranlib" CACHE FILEPATH "zig ranlib")
# the Python modules export only PyInit_* (cmake/Da3Variants.cmake adds a version script);
# zig's lld rejects --exclude-libs, which that file then leaves out
set(DA3_ZIG_TOOLCHAIN ON)
