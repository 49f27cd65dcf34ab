# Da3Tests.cmake - C/C++ test executables (DA3CPP_BUILD_TESTS=ON), run with ctest.
#
# They link the core of one CPU variant (native if built, else the first CPU level) and use
# the shared fixture model (DA3CPP_TEST_MODEL); a test whose model is missing is skipped.
#   da3_test_camera_math   host-side camera / postprocessing maths (tests/cpp/test_camera_math.cpp)
#   da3_test_ray_pose      ray-map camera estimation (host/ray_pose.cpp) on synthetic rays of known cameras
#   da3_test_cpu_gemm      our CPU GEMM / attention ops against double-precision loops
#   da3_test_cpu_gemm_bf16  the bf16 GEMM (AMX-BF16 / AVX512-BF16) the same way; skipped (77) without an engine
#   da3_test_cpu_conv      our fused 3x3 (direct and Winograd) / 1x1 convolution op, the same way
#   da3_test_c_api         the C API as a C program: load, infer, outputs, errors, free
#   da3_test_load_corrupt  truncated and byte-mutated copies of the fixture fed to da3_load
#   da3_test_ggml_abort    a ggml abort after init: SIGABRT, our message on stderr, no gdb backtrace
# Under DA3CPP_SANITIZE=address they also run LeakSanitizer (plain executables).

set(DA3CPP_TEST_MODEL "${PROJECT_SOURCE_DIR}/../shared/fixtures/da3-small-anchor-layout/da3-small-rand-f16.gguf"
    CACHE FILEPATH "GGUF model used by the C/C++ tests")

function(da3_add_tests)
    da3_cpu_core_variant(variant DA3CPP_BUILD_TESTS)
    set(dir "${PROJECT_SOURCE_DIR}/tests/cpp")
    set(skip_code 77)

    add_executable(da3_test_camera_math "${dir}/test_camera_math.cpp")
    target_include_directories(da3_test_camera_math PRIVATE "${PROJECT_SOURCE_DIR}/cpp/src")
    add_executable(da3_test_ray_pose "${dir}/test_ray_pose.cpp")
    target_include_directories(da3_test_ray_pose PRIVATE "${PROJECT_SOURCE_DIR}/cpp/src")
    add_executable(da3_test_cpu_gemm "${dir}/test_cpu_gemm.cpp")
    target_include_directories(da3_test_cpu_gemm PRIVATE "${PROJECT_SOURCE_DIR}/cpp/src")
    add_executable(da3_test_cpu_gemm_bf16 "${dir}/test_cpu_gemm_bf16.cpp")
    target_include_directories(da3_test_cpu_gemm_bf16 PRIVATE "${PROJECT_SOURCE_DIR}/cpp/src")
    add_executable(da3_test_cpu_conv "${dir}/test_cpu_conv.cpp")
    target_include_directories(da3_test_cpu_conv PRIVATE "${PROJECT_SOURCE_DIR}/cpp/src")
    add_executable(da3_test_c_api "${dir}/test_c_api.c")
    add_executable(da3_test_load_corrupt "${dir}/test_load_corrupt.c")
    add_executable(da3_test_ggml_abort "${dir}/test_ggml_abort.cpp")
    foreach(t da3_test_camera_math da3_test_ray_pose da3_test_cpu_gemm da3_test_cpu_gemm_bf16 da3_test_cpu_conv da3_test_c_api
              da3_test_load_corrupt da3_test_ggml_abort)
        target_link_libraries(${t} PRIVATE da3_core_${variant})
        target_compile_options(${t} PRIVATE ${DA3_WARNING_FLAGS})
        # the core is C++: link with the C++ driver even for the C tests
        set_target_properties(${t} PROPERTIES LINKER_LANGUAGE CXX C_STANDARD 11 C_STANDARD_REQUIRED ON)
    endforeach()

    add_test(NAME camera_math COMMAND da3_test_camera_math)
    add_test(NAME ray_pose COMMAND da3_test_ray_pose)
    add_test(NAME cpu_gemm COMMAND da3_test_cpu_gemm)
    add_test(NAME cpu_gemm_bf16 COMMAND da3_test_cpu_gemm_bf16)
    add_test(NAME cpu_conv COMMAND da3_test_cpu_conv)
    add_test(NAME c_api COMMAND da3_test_c_api "${DA3CPP_TEST_MODEL}")
    add_test(NAME load_corrupt COMMAND da3_test_load_corrupt "${DA3CPP_TEST_MODEL}" "${CMAKE_CURRENT_BINARY_DIR}/load_corrupt")
    add_test(NAME ggml_abort COMMAND da3_test_ggml_abort)
    set_tests_properties(c_api load_corrupt cpu_gemm_bf16 PROPERTIES SKIP_RETURN_CODE ${skip_code})
    message(STATUS "da3cpp: C/C++ tests against da3_core_${variant} (ctest --test-dir ${CMAKE_BINARY_DIR})")
endfunction()
