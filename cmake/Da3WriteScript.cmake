# da3_write_script(<path> <body>): writes an executable script, only when its text changed (so
# its timestamp, and what depends on it, stays put across configure runs). Used by the zig
# toolchain files (compiler wrappers) and Da3Ggml.cmake (the cmake wrapper).
function(da3_write_script path body)
    set(old "")
    if(EXISTS "${path}")
        file(READ "${path}" old)
    endif()
    if(NOT old STREQUAL body)
        file(WRITE "${path}" "${body}")
        file(CHMOD "${path}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
             GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    endif()
endfunction()
