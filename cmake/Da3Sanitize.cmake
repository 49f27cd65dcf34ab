# Da3Sanitize.cmake - optional sanitizer build (developer / CI checks, never for wheels).
#
#   cmake -S . -B build/asan -G Ninja -DDA3CPP_VARIANTS=native -DDA3CPP_SANITIZE=address,undefined \
#         -DDA3CPP_BUILD_TESTS=ON
#
# compiles ggml, our core, the modules and the test executables with -fsanitize=<list>. With
# "undefined" every UBSan finding aborts (-fno-sanitize-recover), so tests fail on it. The
# Python module then needs the ASan runtime preloaded: see .ci/sanitizers.sh.

set(DA3_SANITIZE_FLAGS "")
if(DA3CPP_SANITIZE)
    if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        message(FATAL_ERROR "da3cpp: DA3CPP_SANITIZE needs GCC or Clang")
    endif()
    if(DA3CPP_SANITIZE MATCHES "address" AND DA3CPP_SANITIZE MATCHES "thread")
        message(FATAL_ERROR "da3cpp: address and thread sanitizers cannot be combined")
    endif()
    set(DA3_SANITIZE_FLAGS -fsanitize=${DA3CPP_SANITIZE} -fno-omit-frame-pointer -g1)
    if(DA3CPP_SANITIZE MATCHES "undefined")
        list(APPEND DA3_SANITIZE_FLAGS -fno-sanitize-recover=undefined)
    endif()
    add_compile_options(${DA3_SANITIZE_FLAGS})
    add_link_options(-fsanitize=${DA3CPP_SANITIZE})
    message(STATUS "da3cpp: sanitizers: ${DA3CPP_SANITIZE}")
endif()
# the same flags as one string, for the ggml sub-builds (cmake/Da3Ggml.cmake)
list(JOIN DA3_SANITIZE_FLAGS " " DA3_SANITIZE_FLAGS_STRING)
