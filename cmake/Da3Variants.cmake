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

file(GLOB DA3_CORE_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/cpp/src/*.cpp")
file(GLOB DA3_BINDING_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/*.cpp")

set(DA3_MODULES "")

# da3_add_variant(<name> LEVEL <x64|avx2|avx512|native> [GPU vulkan|cuda] [GGML_ARGS ...])
# builds module _da3_<name> with DA3_VARIANT_NAME="<name>".
function(da3_add_variant name)
    cmake_parse_arguments(ARG "" "LEVEL;GPU" "GGML_ARGS" ${ARGN})
    set(module "_da3_${name}")
    da3_add_ggml(${name} SOURCE_DIR "${DA3_GGML_SOURCE_PATCHED}" GPU "${ARG_GPU}"
                 CMAKE_ARGS ${_DA3_LEVEL_${ARG_LEVEL}_GGML} ${ARG_GGML_ARGS})
    set(isa_flags ${_DA3_LEVEL_${ARG_LEVEL}_FLAGS})

    set(defs DA3_VARIANT_NAME="${name}" DA3_GGML_VERSION="${DA3_GGML_VERSION}")
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
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
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
