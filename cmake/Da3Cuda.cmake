# Da3Cuda.cmake - settings of the optional CUDA variant (DA3CPP_CUDA=ON or "cuda" in DA3CPP_VARIANTS).
#
# nvcc comes from CMAKE_CUDA_COMPILER, PATH or /usr/local/cuda/bin; cuBLAS from the toolkit or,
# if the toolkit lacks it, from the `nvidia-cublas` pip wheel of the build's Python (found by
# cmake/find_cublas.py). The module links cudart statically and cuBLAS dynamically, with an
# RPATH to the wheel's lib dir (site-packages/nvidia/<cu13|cublas>/lib).

set(CMAKE_CUDA_ARCHITECTURES "75;80;86;87;89;90-virtual" CACHE STRING
    "CUDA architectures of the CUDA variant (87 = Jetson Orin)")

function(da3_setup_cuda out_args)
    if(NOT CMAKE_CUDA_COMPILER)
        find_program(_nvcc nvcc HINTS "$ENV{CUDA_PATH}/bin" /usr/local/cuda/bin)
        if(NOT _nvcc)
            message(FATAL_ERROR "da3cpp: the CUDA variant needs nvcc (set CMAKE_CUDA_COMPILER)")
        endif()
        set(CMAKE_CUDA_COMPILER "${_nvcc}" CACHE FILEPATH "nvcc" FORCE)
    endif()
    get_filename_component(_bin "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(_root "${_bin}" DIRECTORY)
    set(CUDAToolkit_ROOT "${_root}")

    set(args -DCMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER}
             "-DCMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES}"
             -DCUDAToolkit_ROOT=${_root})
    find_library(_tk_cublas cublas HINTS "${_root}/lib64" "${_root}/lib" NO_DEFAULT_PATH)
    if(_tk_cublas)
        message(STATUS "da3cpp: cuBLAS from the CUDA toolkit: ${_tk_cublas}")
    else()
        execute_process(COMMAND "${Python_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/cmake/find_cublas.py"
                        OUTPUT_VARIABLE _wheel OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
        if(NOT _rc EQUAL 0)
            message(FATAL_ERROR "da3cpp: cuBLAS not in ${_root} and the nvidia-cublas wheel is not "
                                "installed in ${Python_EXECUTABLE}: pip install nvidia-cublas")
        endif()
        list(GET _wheel 0 _inc)
        list(GET _wheel 1 _blas)
        list(GET _wheel 2 _blaslt)
        message(STATUS "da3cpp: cuBLAS from the nvidia-cublas wheel: ${_blas}")
        # pre-set FindCUDAToolkit's cache entries (the wheel has no unversioned .so)
        set(CUDA_cublas_LIBRARY "${_blas}" CACHE FILEPATH "" FORCE)
        set(CUDA_cublasLt_LIBRARY "${_blaslt}" CACHE FILEPATH "" FORCE)
        list(APPEND args -DCUDA_cublas_LIBRARY=${_blas} -DCUDA_cublasLt_LIBRARY=${_blaslt}
                         "-DCMAKE_CUDA_FLAGS=-isystem ${_inc}")
        get_filename_component(_libdir "${_blas}" DIRECTORY)
        get_filename_component(_sub "${_libdir}" DIRECTORY)
        get_filename_component(_sub "${_sub}" NAME)
        # installed module: site-packages/depth_anything_cpp/_da3_cuda*.so
        set(DA3_CUDA_RPATH "$ORIGIN/../nvidia/${_sub}/lib;${_libdir}" PARENT_SCOPE)
        set(_cublas_inc "${_inc}")
    endif()
    find_package(CUDAToolkit REQUIRED)
    if(_cublas_inc)
        set_property(TARGET CUDA::cublas APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_cublas_inc}")
    endif()
    if(NOT TARGET CUDA::cuda_driver)
        # no libcuda.so (not even the toolkit's stub): build without ggml's VMM pool
        message(WARNING "da3cpp: libcuda (CUDA driver / stubs) not found: building ggml-cuda with GGML_CUDA_NO_VMM")
        list(APPEND args -DGGML_CUDA_NO_VMM=ON)
    endif()
    set(${out_args} ${args} PARENT_SCOPE)
endfunction()
