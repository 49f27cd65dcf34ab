# Da3SharedLib.cmake - libdepth_anything: the C API as a shared library for non-Python
# consumers (a Go backend dlopens it), built from the same objects as one CPU variant's core
# (DA3CPP_SHARED_LIB=ON; not part of the wheel). Only the da3_* symbols are exported (version
# script); ggml and our C++ internals stay hidden inside. Installed (component c_library):
# lib/libdepth_anything.so, include/depth_anything.h and a CMake package,
#   find_package(depth_anything CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE depth_anything::depth_anything)
# With DA3CPP_BUILD_TESTS, ctest runs tests/cpp/test_dlopen.c against the built library.

include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

# the package version, written once in pyproject.toml
file(STRINGS "${PROJECT_SOURCE_DIR}/pyproject.toml" _da3_version_line REGEX "^version = \"[0-9.]+\"" LIMIT_COUNT 1)
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" DA3_LIB_VERSION "${_da3_version_line}")
string(REGEX MATCH "^[0-9]+" DA3_LIB_SOVERSION "${DA3_LIB_VERSION}")

function(da3_add_shared_library)
    da3_cpu_core_variant(variant DA3CPP_SHARED_LIB)
    set(map "${CMAKE_CURRENT_BINARY_DIR}/depth_anything.map")
    file(WRITE "${map}" "{\n  global: da3_*;\n  local: *;\n};\n")
    add_library(depth_anything SHARED $<TARGET_OBJECTS:da3_core_${variant}>)
    add_library(depth_anything::depth_anything ALIAS depth_anything)
    target_link_libraries(depth_anything PRIVATE da3_ggml_${variant})
    target_include_directories(depth_anything PUBLIC
        $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/cpp/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    set_target_properties(depth_anything PROPERTIES LINKER_LANGUAGE CXX VERSION ${DA3_LIB_VERSION}
                          SOVERSION ${DA3_LIB_SOVERSION} PUBLIC_HEADER "${PROJECT_SOURCE_DIR}/cpp/include/depth_anything.h"
                          LINK_DEPENDS "${map}")
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
        target_link_options(depth_anything PRIVATE "LINKER:--version-script=${map}" "LINKER:--exclude-libs,ALL"
                            "LINKER:--gc-sections" "LINKER:--as-needed" "LINKER:--no-undefined")
    endif()
    install(TARGETS depth_anything EXPORT depth_anythingTargets COMPONENT c_library
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
            RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    set(cfg_dir "${CMAKE_INSTALL_LIBDIR}/cmake/depth_anything")
    install(EXPORT depth_anythingTargets NAMESPACE depth_anything:: DESTINATION "${cfg_dir}" COMPONENT c_library)
    file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/depth_anythingConfig.cmake.in"
         "@PACKAGE_INIT@\ninclude(\"\${CMAKE_CURRENT_LIST_DIR}/depth_anythingTargets.cmake\")\n")
    configure_package_config_file("${CMAKE_CURRENT_BINARY_DIR}/depth_anythingConfig.cmake.in"
        "${CMAKE_CURRENT_BINARY_DIR}/depth_anythingConfig.cmake" INSTALL_DESTINATION "${cfg_dir}")
    write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/depth_anythingConfigVersion.cmake"
        VERSION ${DA3_LIB_VERSION} COMPATIBILITY SameMinorVersion)
    install(FILES "${CMAKE_CURRENT_BINARY_DIR}/depth_anythingConfig.cmake"
                  "${CMAKE_CURRENT_BINARY_DIR}/depth_anythingConfigVersion.cmake"
            DESTINATION "${cfg_dir}" COMPONENT c_library)
    if(DA3CPP_BUILD_TESTS)
        add_executable(da3_test_dlopen "${PROJECT_SOURCE_DIR}/tests/cpp/test_dlopen.c")
        target_include_directories(da3_test_dlopen PRIVATE "${PROJECT_SOURCE_DIR}/cpp/include")
        target_link_libraries(da3_test_dlopen PRIVATE ${CMAKE_DL_LIBS})
        set_target_properties(da3_test_dlopen PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON)
        add_dependencies(da3_test_dlopen depth_anything)
        add_test(NAME dlopen COMMAND da3_test_dlopen "$<TARGET_FILE:depth_anything>" "${DA3CPP_TEST_MODEL}")
        set_tests_properties(dlopen PROPERTIES SKIP_RETURN_CODE 77)
    endif()
    message(STATUS "da3cpp: libdepth_anything from da3_core_${variant}")
endfunction()
