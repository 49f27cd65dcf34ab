# Da3Variants.cmake - one Python extension module per build variant.
#
# A variant = a ggml build (CPU ISA level, optional GPU backend) + our sources compiled for the
# same ISA level:  da3_core_<v> (static, cpp/src/*.cpp)  ->  module _da3_<v> (src/*.cpp).
# Keep the level names in sync with python/depth_anything_cpp/_variants.py.

# ggml CPU options and compiler flags per x86 ISA level.
set(_DA3_X86_GGML_OFF
    -DGGML_NATIVE=OFF -DGGML_SSE42=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_BMI2=OFF
    -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF
    -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
# x86-64 baseline: SSE2 only.
set(_DA3_LEVEL_x64_GGML ${_DA3_X86_GGML_OFF})
set(_DA3_LEVEL_x64_FLAGS "")
# haswell level.
set(_DA3_LEVEL_avx2_GGML ${_DA3_X86_GGML_OFF}
    -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_FMA=ON -DGGML_AVX2=ON -DGGML_BMI2=ON)
set(_DA3_LEVEL_avx2_FLAGS -msse4.2 -mavx -mf16c -mfma -mavx2 -mbmi2)
# skylake-x + VNNI (cascadelake) level.
set(_DA3_LEVEL_avx512_GGML ${_DA3_LEVEL_avx2_GGML} -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON)
set(_DA3_LEVEL_avx512_FLAGS ${_DA3_LEVEL_avx2_FLAGS}
    -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw -mavx512vnni)
# this machine.
set(_DA3_LEVEL_native_GGML -DGGML_NATIVE=ON)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    set(_DA3_LEVEL_native_FLAGS -march=native)
else()
    set(_DA3_LEVEL_native_FLAGS "")
endif()

# f32 accumulation in every build (issue #18). With AVX512-FP16 compiled in (-march=native on
# Sapphire Rapids and later), ggml maps its F16 vectors to __m512h and _mm512_fmadd_ph, so f16
# dot products (ggml's mul_mat on f16 weights, llamafile's f16 GEMM) sum in half precision:
# the camera decoder's outputs then drift by 1e-3. We keep that arithmetic out of every level
# instead of routing each f16 product through our kernels: the flag goes to ggml's and our
# compiles alike (an explicit -mno-* wins over -march in GCC and Clang, whatever the order).
# The fixed levels above never enable it; this guards native and any later level. Checked at
# run time by tests/test_precision.py for every built variant; reported by da3_get_build_info().
set(DA3_F32_ACCUM_FLAGS "")
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    include(CheckCXXCompilerFlag)
    check_cxx_compiler_flag(-mno-avx512fp16 DA3_HAVE_MNO_AVX512FP16)
    if(DA3_HAVE_MNO_AVX512FP16)  # compilers without the flag cannot emit AVX512-FP16 either
        set(DA3_F32_ACCUM_FLAGS -mno-avx512fp16)
    endif()
endif()

file(GLOB_RECURSE DA3_CORE_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/cpp/src/*.cpp")
file(GLOB DA3_BINDING_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/*.cpp")

set(DA3_MODULES "")

# da3_add_variant(<name> LEVEL <x64|avx2|avx512|native> [GPU vulkan|cuda] [GGML_ARGS ...])
# builds module _da3_<name> with DA3_VARIANT_NAME="<name>".
function(da3_add_variant name)
    cmake_parse_arguments(ARG "" "LEVEL;GPU" "GGML_ARGS" ${ARGN})
    set(module "_da3_${name}")
    da3_add_ggml(${name} SOURCE_DIR "${DA3_GGML_SOURCE_PATCHED}" GPU "${ARG_GPU}"
                 EXTRA_FLAGS ${DA3_F32_ACCUM_FLAGS}
                 CMAKE_ARGS ${_DA3_LEVEL_${ARG_LEVEL}_GGML} ${ARG_GGML_ARGS})
    set(isa_flags ${_DA3_LEVEL_${ARG_LEVEL}_FLAGS} ${DA3_F32_ACCUM_FLAGS})
    list(JOIN isa_flags " " isa_flags_text)

    set(defs DA3_VARIANT_NAME="${name}" DA3_GGML_VERSION="${DA3_GGML_VERSION}"
        DA3_ISA_LEVEL="${ARG_LEVEL}" DA3_ISA_FLAGS="${isa_flags_text}")
    if(ARG_GPU STREQUAL "vulkan")
        list(APPEND defs DA3_WITH_VULKAN=1)
    elseif(ARG_GPU STREQUAL "cuda")
        list(APPEND defs DA3_WITH_CUDA=1)
    endif()

    # our C++ library, compiled for this variant's ISA level
    add_library(da3_core_${name} STATIC ${DA3_CORE_SOURCES})
    target_include_directories(da3_core_${name}
        PUBLIC "${PROJECT_SOURCE_DIR}/cpp/include"
        PRIVATE "${PROJECT_SOURCE_DIR}/cpp/src")
    target_compile_features(da3_core_${name} PUBLIC cxx_std_17)
    target_compile_definitions(da3_core_${name} PUBLIC ${defs})
    target_compile_options(da3_core_${name} PRIVATE ${isa_flags} ${DA3_WARNING_FLAGS}
                           -ffunction-sections -fdata-sections)
    set_target_properties(da3_core_${name} PROPERTIES
        POSITION_INDEPENDENT_CODE ON
        CXX_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON)
    target_link_libraries(da3_core_${name} PUBLIC da3_ggml_${name})

    # the Python module (pybind11), all static code hidden inside it
    pybind11_add_module(${module} MODULE ${DA3_BINDING_SOURCES})
    target_compile_definitions(${module} PRIVATE DA3_MODULE_NAME=${module})
    target_compile_options(${module} PRIVATE ${isa_flags} ${DA3_WARNING_FLAGS})
    target_link_libraries(${module} PRIVATE da3_core_${name})
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND DA3_ZIG_TOOLCHAIN)  # version script instead (cmake/toolchains)
        target_link_options(${module} PRIVATE "LINKER:--gc-sections" "LINKER:--as-needed")
    elseif(CMAKE_SYSTEM_NAME STREQUAL "Linux")
        target_link_options(${module} PRIVATE "LINKER:--exclude-libs,ALL" "LINKER:--gc-sections"
                            "LINKER:--as-needed")
    endif()
    if(ARG_GPU STREQUAL "cuda" AND DA3_CUDA_RPATH)
        set_target_properties(${module} PROPERTIES INSTALL_RPATH "${DA3_CUDA_RPATH}"
                                                   BUILD_RPATH "${DA3_CUDA_RPATH}")
    endif()
    da3_finish_module(${module})
    set(DA3_MODULES ${DA3_MODULES} ${module} PARENT_SCOPE)
endfunction()

# Install into the wheel's package dir; for developer builds optionally copy next to the
# Python sources so `PYTHONPATH=python` finds it.
function(da3_finish_module target)
    install(TARGETS ${target} LIBRARY DESTINATION depth_anything_cpp COMPONENT python)
    if(DA3CPP_COPY_TO_SOURCE)
        add_custom_command(TARGET ${target} POST_BUILD
            COMMAND ${CMAKE_COMMAND} -E copy_if_different "$<TARGET_FILE:${target}>"
                    "${PROJECT_SOURCE_DIR}/python/depth_anything_cpp/"
            COMMENT "da3cpp: copying ${target} into python/depth_anything_cpp/")
    endif()
endfunction()

# da3_cpu_core_variant(<out> <option>): the CPU variant whose core the C/C++ tests and the shared
# library use: native if built, else the highest x86 level built; fails naming <option> if none.
function(da3_cpu_core_variant out option)
    foreach(v native cpu_avx512 cpu_avx2 cpu_x64)
        if(TARGET da3_core_${v})
            set(${out} ${v} PARENT_SCOPE)
            return()
        endif()
    endforeach()
    message(FATAL_ERROR "da3cpp: ${option} needs a CPU variant (native, x64, avx2 or avx512)")
endfunction()
