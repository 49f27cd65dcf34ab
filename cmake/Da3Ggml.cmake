# Da3Ggml.cmake - locate the ggml source and build one static, PIC ggml per variant.
#
# ggml is never committed: it comes from DA3CPP_GGML_SOURCE_DIR (cache var or env var) or is
# fetched by cmake/fetch_ggml.py from the package index (pinned version + sha256, cached in
# ~/.cache/depth-anything-cpp). Each variant builds its own ggml with ExternalProject, so a
# variant's ggml only contains code for the CPU ISA that variant targets.

include(ExternalProject)
include("${CMAKE_CURRENT_LIST_DIR}/Da3WriteScript.cmake")

# ---- source --------------------------------------------------------------------------------
function(da3_locate_ggml_source out_dir out_version)
    set(src "${DA3CPP_GGML_SOURCE_DIR}")
    if(NOT src AND DEFINED ENV{DA3CPP_GGML_SOURCE_DIR})
        set(src "$ENV{DA3CPP_GGML_SOURCE_DIR}")
    endif()
    if(src)
        get_filename_component(src "${src}" ABSOLUTE)
        message(STATUS "da3cpp: ggml source from DA3CPP_GGML_SOURCE_DIR: ${src}")
    else()
        execute_process(
            COMMAND "${Python_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/cmake/fetch_ggml.py" "${DA3CPP_GGML_PROVIDER}"
            OUTPUT_VARIABLE fetch_out
            RESULT_VARIABLE fetch_rc
            OUTPUT_STRIP_TRAILING_WHITESPACE)
        if(NOT fetch_rc EQUAL 0)
            message(FATAL_ERROR "da3cpp: fetching ggml (${DA3CPP_GGML_PROVIDER}) failed; "
                                "set DA3CPP_GGML_SOURCE_DIR to a local ggml tree to build offline")
        endif()
        string(REGEX REPLACE ".*\n" "" src "${fetch_out}")
        message(STATUS "da3cpp: ggml source (${DA3CPP_GGML_PROVIDER}): ${src}")
    endif()
    if(NOT EXISTS "${src}/CMakeLists.txt" OR NOT EXISTS "${src}/include/ggml.h")
        message(FATAL_ERROR "da3cpp: ${src} is not a ggml source tree (no CMakeLists.txt / include/ggml.h)")
    endif()
    file(STRINGS "${src}/CMakeLists.txt" ver_lines REGEX "^set\\(GGML_VERSION_(MAJOR|MINOR|PATCH) [0-9]+\\)")
    set(ver "")
    foreach(part MAJOR MINOR PATCH)
        foreach(line IN LISTS ver_lines)
            if(line MATCHES "GGML_VERSION_${part} ([0-9]+)")
                list(APPEND ver "${CMAKE_MATCH_1}")
            endif()
        endforeach()
    endforeach()
    list(JOIN ver "." ver)
    if(NOT ver)
        set(ver "unknown")
    endif()
    set(${out_dir} "${src}" PARENT_SCOPE)
    set(${out_version} "${ver}" PARENT_SCOPE)
endfunction()

# A private, patched copy of the ggml tree used by every variant (cmake/patch_ggml.py: guard for
# old Vulkan headers, missing ggml.pc.in in llama-cpp-python's sdist). Its path never changes;
# when the source (or its sha256) changes, the copy and all ggml builds are redone from scratch,
# so rebuilds stay incremental otherwise.
function(da3_patched_ggml_source src out_dir)
    set(dst "${CMAKE_BINARY_DIR}/ggml-src")
    set(stamp "${CMAKE_BINARY_DIR}/ggml-src.stamp")
    file(SHA256 "${PROJECT_SOURCE_DIR}/cmake/patch_ggml.py" patch_sha)
    set(want "${src} ${patch_sha}")
    if(EXISTS "${src}/.da3cpp-sdist-sha256")
        file(READ "${src}/.da3cpp-sdist-sha256" sha)
        string(STRIP "${sha}" sha)
        string(APPEND want " ${sha}")
    endif()
    set(have "")
    if(EXISTS "${stamp}")
        file(READ "${stamp}" have)
    endif()
    if(NOT have STREQUAL want OR NOT EXISTS "${dst}/CMakeLists.txt")
        message(STATUS "da3cpp: preparing ggml source copy ${dst}")
        file(REMOVE_RECURSE "${dst}" "${CMAKE_BINARY_DIR}/ggml")
        file(COPY "${src}/" DESTINATION "${dst}" PATTERN ".git" EXCLUDE)
        execute_process(
            COMMAND "${Python_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/cmake/patch_ggml.py" "${dst}"
            RESULT_VARIABLE rc)
        if(NOT rc EQUAL 0)
            message(FATAL_ERROR "da3cpp: patching ggml failed")
        endif()
        file(WRITE "${stamp}" "${want}")
    endif()
    set(${out_dir} "${dst}" PARENT_SCOPE)
endfunction()

# ---- one ggml build -------------------------------------------------------------------------
# da3_add_ggml(<variant> SOURCE_DIR <dir> [GPU vulkan|cuda] [EXTRA_FLAGS <flags...>] CMAKE_ARGS <args...>)
# Defines the INTERFACE target da3_ggml_<variant> (headers + static libs in link order).
# EXTRA_FLAGS go to every C/C++ compile of that ggml (after its own ISA flags in effect).
function(da3_add_ggml variant)
    cmake_parse_arguments(ARG "" "SOURCE_DIR;GPU" "CMAKE_ARGS;EXTRA_FLAGS" ${ARGN})
    set(prefix "${CMAKE_BINARY_DIR}/ggml/${variant}")
    set(inst "${prefix}/install")
    set(libdir "${inst}/lib")
    set(libs ggml)
    if(ARG_GPU STREQUAL "vulkan")
        list(APPEND libs ggml-vulkan)
    elseif(ARG_GPU STREQUAL "cuda")
        list(APPEND libs ggml-cuda)
    endif()
    list(APPEND libs ggml-cpu ggml-base)
    set(lib_files "")
    foreach(l IN LISTS libs)
        list(APPEND lib_files "${libdir}/${CMAKE_STATIC_LIBRARY_PREFIX}${l}${CMAKE_STATIC_LIBRARY_SUFFIX}")
    endforeach()

    set(jobs "${DA3CPP_GGML_JOBS}")
    if(NOT jobs AND DEFINED ENV{CMAKE_BUILD_PARALLEL_LEVEL})
        set(jobs "$ENV{CMAKE_BUILD_PARALLEL_LEVEL}")
    endif()
    if(NOT jobs)
        cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
    endif()

    # Run cmake through a wrapper at a fixed path: pip's isolated builds bring a cmake at a new
    # temporary path each time, which would otherwise re-run (and rebuild) every ggml.
    set(ep_cmake "${CMAKE_COMMAND}")
    if(UNIX)
        set(ep_cmake "${CMAKE_BINARY_DIR}/da3-cmake")
        da3_write_script("${ep_cmake}" "#!/bin/sh\nexec \"${CMAKE_COMMAND}\" \"$@\"\n")
    endif()

    set(gc_flags "-ffunction-sections -fdata-sections")
    if(ARG_EXTRA_FLAGS)
        list(JOIN ARG_EXTRA_FLAGS " " extra)
        string(APPEND gc_flags " ${extra}")
    endif()
    if(DA3_SANITIZE_FLAGS_STRING)  # DA3CPP_SANITIZE (cmake/Da3Sanitize.cmake)
        string(APPEND gc_flags " ${DA3_SANITIZE_FLAGS_STRING}")
    endif()
    ExternalProject_Add(ggml_${variant}
        SOURCE_DIR "${ARG_SOURCE_DIR}"
        CMAKE_COMMAND "${ep_cmake}"
        PREFIX "${prefix}"
        BINARY_DIR "${prefix}/build"
        INSTALL_DIR "${inst}"
        CMAKE_ARGS
            -DCMAKE_BUILD_TYPE=Release
            -DCMAKE_INSTALL_PREFIX=<INSTALL_DIR>
            -DCMAKE_INSTALL_LIBDIR=lib
            -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}
            -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
            -DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}
            "-DCMAKE_C_FLAGS=${gc_flags}"
            "-DCMAKE_CXX_FLAGS=${gc_flags}"
            -DCMAKE_POSITION_INDEPENDENT_CODE=ON
            -DBUILD_SHARED_LIBS=OFF
            -DGGML_BACKEND_DL=OFF
            -DGGML_BUILD_TESTS=OFF
            -DGGML_BUILD_EXAMPLES=OFF
            -DGGML_CCACHE=OFF
            -DGGML_OPENMP=${DA3CPP_GGML_OPENMP}
            -DGGML_LLAMAFILE=ON
            ${ARG_CMAKE_ARGS}
        BUILD_COMMAND "${ep_cmake}" --build <BINARY_DIR> --config Release --parallel ${jobs}
        INSTALL_COMMAND "${ep_cmake}" --install <BINARY_DIR> --config Release
        USES_TERMINAL_CONFIGURE TRUE
        USES_TERMINAL_BUILD TRUE
        INSTALL_BYPRODUCTS ${lib_files}
    )

    file(MAKE_DIRECTORY "${inst}/include")
    add_library(da3_ggml_${variant} INTERFACE)
    add_dependencies(da3_ggml_${variant} ggml_${variant})
    target_include_directories(da3_ggml_${variant} SYSTEM INTERFACE "${inst}/include")
    target_link_libraries(da3_ggml_${variant} INTERFACE ${lib_files} Threads::Threads ${CMAKE_DL_LIBS})
    if(DA3CPP_GGML_OPENMP)
        target_link_libraries(da3_ggml_${variant} INTERFACE OpenMP::OpenMP_CXX OpenMP::OpenMP_C)
        target_compile_definitions(da3_ggml_${variant} INTERFACE DA3_GGML_OPENMP=1)  # api.cpp: fork handler
    endif()
    if(UNIX AND NOT APPLE)
        target_link_libraries(da3_ggml_${variant} INTERFACE m)
    endif()
    if(ARG_GPU STREQUAL "vulkan")
        # Linux: headers only; the module leaves vkGetInstanceProcAddr & co. undefined (no DT_NEEDED on
        # libvulkan.so.1), and _variants.py loads the system's Vulkan loader (RTLD_GLOBAL) before
        # importing it, so a machine without the loader still imports and runs the CPU variants
        if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
            target_link_libraries(da3_ggml_${variant} INTERFACE Vulkan::Headers)
        else()
            target_link_libraries(da3_ggml_${variant} INTERFACE Vulkan::Vulkan)
        endif()
    elseif(ARG_GPU STREQUAL "cuda")
        target_link_libraries(da3_ggml_${variant} INTERFACE CUDA::cudart_static CUDA::cublas CUDA::cublasLt)
        if(TARGET CUDA::cuda_driver)
            target_link_libraries(da3_ggml_${variant} INTERFACE CUDA::cuda_driver)
        endif()
    endif()
endfunction()
