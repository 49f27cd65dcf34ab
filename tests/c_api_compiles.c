/* Compiled as strict C (C99 and C11, -Wall -Wextra -Werror -pedantic) by tests/test_c_api_header.py:
 * the public header must be usable from C. Only compiled, never linked: every API function is
 * taken by address with its exact prototype, so a signature change shows up here. */
#include "depth_anything.h"

#include <stddef.h>

typedef struct da3_api_table {
    const char *(*status_string)(da3_status);
    const char *(*last_error)(void);
    const char *(*ggml_version)(void);
    const char *(*build_variant)(void);
    int (*device_count)(void);
    da3_status (*device_get)(int, da3_device_info *);
    da3_context_params (*context_default_params)(void);
    da3_status (*load)(const char *, const da3_context_params *, da3_context **);
    void (*free_ctx)(da3_context *);
    da3_status (*get_model_info)(const da3_context *, da3_model_info *);
    da3_infer_params (*infer_default_params)(void);
    da3_status (*infer)(da3_context *, const da3_image *, int, const float *, int, const float *,
                        const da3_infer_params *, da3_result **);
    da3_status (*infer_tensor)(da3_context *, const float *, int, int, int, const float *, int,
                               const float *, const da3_infer_params *, da3_result **);
    da3_status (*preprocess)(const da3_image *, int, int, da3_resize_method, const float *,
                             const float *, int *, int *, uint8_t *, float *);
    void (*result_free)(da3_result *);
    void (*result_shape)(const da3_result *, int *, int *, int *);
    const float *(*result_get)(const da3_result *, const char *, int64_t *, int *);
    const uint8_t *(*result_images)(const da3_result *);
    int (*result_is_metric)(const da3_result *);
    int (*result_count)(const da3_result *);
    const char *(*result_name)(const da3_result *, int);
    da3_status (*load_pair)(const char *, const char *, const da3_context_params *, da3_context **);
    da3_points_params (*points_default_params)(void);
    da3_status (*points_compute)(const float *, const float *, const float *, const uint8_t *, int, int, int,
                                 const float *, int, const float *, const da3_points_params *, da3_points **);
    void (*points_free)(da3_points *);
    int64_t (*points_count)(const da3_points *);
    const float *(*points_xyz)(const da3_points *);
    const uint8_t *(*points_rgb)(const da3_points *);
    const int32_t *(*points_view)(const da3_points *);
    const int32_t *(*points_pixel)(const da3_points *);
    double (*points_conf_thresh)(const da3_points *);
    da3_glb_params (*glb_default_params)(void);
    da3_status (*export_glb)(const char *, const float *, const uint8_t *, int64_t, const float *, int,
                             const float *, int, int, int, const da3_glb_params *, double *);
    da3_colmap_params (*colmap_default_params)(void);
    da3_status (*export_colmap)(const char *, const float *, const uint8_t *, const int32_t *, const int32_t *,
                                int64_t, const float *, int, const float *, int, int, int, const int32_t *,
                                const char *const *, const da3_colmap_params *);
    const char *(*enum_names[4])(int);
    int (*last_errno)(void);
    da3_status (*ray_pose)(const float *, const float *, int, int, int, int, int, uint64_t, float *, float *);
} da3_api_table;

const da3_api_table da3_api = {
    da3_status_string, da3_last_error, da3_ggml_version, da3_build_variant,
    da3_device_count, da3_device_get, da3_context_default_params, da3_load, da3_free,
    da3_get_model_info, da3_infer_default_params, da3_infer, da3_infer_tensor, da3_preprocess,
    da3_result_free, da3_result_shape, da3_result_get, da3_result_images, da3_result_is_metric,
    da3_result_count, da3_result_name, da3_load_pair, da3_points_default_params, da3_points_compute,
    da3_points_free, da3_points_count, da3_points_xyz, da3_points_rgb, da3_points_view, da3_points_pixel,
    da3_points_conf_thresh, da3_glb_default_params, da3_export_glb, da3_colmap_default_params,
    da3_export_colmap,
    {da3_resize_method_name, da3_ref_view_strategy_name, da3_backend_kind_name, da3_precision_name},
    da3_last_errno,
    da3_ray_pose,
};

/* enum values and struct fields a C caller uses */
int da3_c_usage(void);
int da3_c_usage(void) {
    da3_image img;
    da3_device_info dev;
    da3_model_info info;
    img.data = NULL;
    img.width = 0;
    img.height = 0;
    img.stride = 0;
    dev.is_gpu = 0;
    info.embed_dim = 0;
    return (int)DA3_OK + (int)DA3_ERR_INTERNAL + (int)DA3_BACKEND_GPU + (int)DA3_RESIZE_LOWER_BOUND +
           (int)DA3_REF_SADDLE_SIM_RANGE + img.width + dev.is_gpu + info.embed_dim + (int)sizeof(da3_api);
}
