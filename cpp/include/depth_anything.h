/*
 * depth_anything.h - C API of depth-anything.cpp, a ggml port of Depth Anything 3 (DA3).
 *
 * Conventions (after whisper.h / mtmd.h):
 *  - Opaque handles: da3_context (a loaded model + its compute state) and da3_result
 *    (the outputs of one inference call).
 *  - Every function that can fail returns a da3_status. On failure the reason is
 *    available from da3_last_error() (thread-local, valid until the next failing call
 *    on the same thread).
 *  - Params structs are obtained from *_default_params() and then edited; new fields
 *    are only ever appended.
 *  - Ownership: buffers passed in are borrowed for the duration of the call only.
 *    Pointers returned by da3_result_* accessors are owned by the da3_result and stay
 *    valid until da3_result_free(). Strings returned are owned by the library.
 *  - Thread safety: a da3_context serializes its own inference calls (an internal
 *    mutex); different contexts run fully in parallel.
 *
 * Array layouts are C-contiguous, row-major, float32 unless stated:
 *  depth, conf, sky:     [n_views, height, width]
 *  extrinsics:           [n_views, 3, 4]  world-to-camera, OpenCV axes
 *  intrinsics:           [n_views, 3, 3]  pixels, at the processed resolution
 *  processed images:     [n_views, height, width, 3] uint8 RGB
 *  network input:        [n_views, 3, height, width] normalized float32
 */
#ifndef DEPTH_ANYTHING_H
#define DEPTH_ANYTHING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(DA3_SHARED) && defined(DA3_BUILD)
#define DA3_API __declspec(dllexport)
#elif defined(_WIN32) && defined(DA3_SHARED)
#define DA3_API __declspec(dllimport)
#else
#define DA3_API __attribute__((visibility("default")))
#endif

typedef enum da3_status {
    DA3_OK = 0,
    DA3_ERR_INVALID_ARGUMENT = 1, /* bad pointer, size, dtype, value */
    DA3_ERR_IO = 2,               /* file missing, unreadable, not a regular file */
    DA3_ERR_FORMAT = 3,           /* not a GGUF, truncated, wrong architecture, bad metadata */
    DA3_ERR_MISSING_TENSOR = 4,   /* a tensor the architecture needs is absent or misshaped */
    DA3_ERR_UNSUPPORTED = 5,      /* valid but not supported (tensor type, feature, model kind) */
    DA3_ERR_OUT_OF_MEMORY = 6,    /* allocation failed or input over the documented size limit */
    DA3_ERR_BACKEND = 7,          /* ggml backend failed (device lost, compute error) */
    DA3_ERR_INTERNAL = 8,         /* a bug: please report */
    DA3_ERR_NON_FINITE = 9        /* an output is NaN or inf (non-finite weights or input); message names it */
} da3_status;

/* Human-readable name of a status code (static string). */
DA3_API const char *da3_status_string(da3_status status);

/* Message of the last failure on this thread ("" if none). Owned by the library. */
DA3_API const char *da3_last_error(void);

/* ggml version string of the linked ggml and the compiled variant name (static strings). */
DA3_API const char *da3_ggml_version(void);
DA3_API const char *da3_build_variant(void);

/* How this library was compiled (static strings, owned by the library). */
typedef struct da3_build_info {
    const char *variant;           /* as da3_build_variant(): "cpu_avx512", "native", "vulkan", ... */
    const char *isa_level;         /* CPU level of our code and of ggml's CPU backend: "x64", "avx2",
                                      "avx512", "native" (the build machine) */
    const char *isa_flags;         /* the compiler flags of that level, e.g. "-march=native -mno-avx512fp16" */
    const char *isa_features;      /* comma-separated ISA extensions compiled in ("avx2,fma,f16c,...") */
    const char *reduced_precision; /* comma-separated reduced-precision arithmetic compiled in (e.g.
                                      "avx512fp16", "arm_fp16_vector"); "" when every product
                                      accumulates in f32, which every variant we build guarantees */
    const char *ggml_features;     /* ggml CPU backend's own list, "AVX2=1,FMA=1,..." */
    const char *bf16_engines;      /* bf16 matrix engines compiled in ("amx_bf16,avx512_bf16" or ""):
                                      used only when a context asks for DA3_PRECISION_BF16 and the CPU
                                      offers one (da3_cpu_matrix_engines), never in f32 mode */
} da3_build_info;

DA3_API const da3_build_info *da3_get_build_info(void);

/* The reduced-precision matrix engines this build can use on this CPU and OS (checked at run
 * time: CPUID, XCR0, Linux tile-data permission), best first, comma-separated: "amx_bf16",
 * "avx512_bf16"; "" when none (then DA3_PRECISION_BF16 runs f32). Static string. */
DA3_API const char *da3_cpu_matrix_engines(void);

/* The GGUF schema this library reads, as JSON (static string): "arch", metadata "keys",
 * tensor "groups" (name prefixes), "markers" (tensors whose presence gives a file's kind),
 * "presets" ({name: {"kind": "anyview" | "dpt_sky" | "nested", "metric_scaling": bool,
 * "embed_dim": int}}), "custom_preset". The converter is checked against it. */
DA3_API const char *da3_gguf_schema_json(void);

/* ---- backends ------------------------------------------------------------------- */

typedef enum da3_backend_kind {
    DA3_BACKEND_AUTO = 0, /* the first GPU device if any, else CPU */
    DA3_BACKEND_CPU = 1,
    DA3_BACKEND_GPU = 2   /* Vulkan or CUDA, whichever this build carries */
} da3_backend_kind;

typedef struct da3_device_info {
    char name[128];
    char description[256];
    int is_gpu;           /* 1 for a discrete/integrated GPU, 0 for CPU-like (e.g. lavapipe) */
    size_t memory_total;  /* bytes, 0 if unknown */
    size_t memory_free;
} da3_device_info;

/* Number of compute devices ggml sees in this build (the CPU included). */
DA3_API int da3_device_count(void);
/* Fills *info for device index i in [0, da3_device_count()). */
DA3_API da3_status da3_device_get(int i, da3_device_info *info);

/* ---- model ---------------------------------------------------------------------- */

typedef struct da3_context da3_context;

/* Arithmetic of the ViT's linear layers on the CPU backend, chosen at load. */
typedef enum da3_precision {
    DA3_PRECISION_AUTO = 0, /* exact f32 for f32 files, BF16 below for f16/bf16 files, int8 for
                               q8_0/q4_k files */
    DA3_PRECISION_F32 = 1,  /* f32 products and sums (the parity mode); q8_0/q4_k stay int8 */
    DA3_PRECISION_BF16 = 2  /* f32/f16/bf16 weights and the activations rounded to bf16, f32 sums, on
                               the CPU's AMX-BF16 or AVX512-BF16 engine; f32 where it has neither
                               (da3_model_info.linear_engine says which ran) */
} da3_precision;

typedef struct da3_context_params {
    int n_threads;            /* CPU threads, at most 512 (ggml); <= 0: number of physical cores */
    da3_backend_kind backend; /* default DA3_BACKEND_CPU */
    int device;               /* device index for DA3_BACKEND_GPU, -1 = first GPU */
    int use_mmap;             /* reserved; weights are read into backend buffers */
    int precision;            /* da3_precision, default DA3_PRECISION_AUTO; other values:
                                 DA3_ERR_INVALID_ARGUMENT */
} da3_context_params;

DA3_API da3_context_params da3_context_default_params(void);

/* Loads a GGUF in the published depth-anything.cpp layout (see docs). On success
 * *out is a new context the caller frees with da3_free(). On failure *out is NULL. */
DA3_API da3_status da3_load(const char *path, const da3_context_params *params, da3_context **out);
/* Loads the nested giant + metric model published as two files: `anyview_path`, the any-view
 * model with a camera decoder (da3-giant: vit.*, head.*, cam.*), and `metric_path`, the metric
 * model (da3metric-large: DPT head with sky), whose vit.* / head.* become the metric branch.
 * Gives the same model as one nested file (m_vit.*, m_head.*) loaded with da3_load. Files of
 * the wrong kinds or in the wrong order: DA3_ERR_FORMAT, the message names both files and the
 * expected order. *out as for da3_load. */
DA3_API da3_status da3_load_pair(const char *anyview_path, const char *metric_path, const da3_context_params *params,
                                 da3_context **out);
DA3_API void da3_free(da3_context *ctx);

typedef struct da3_model_info {
    char preset[64];        /* "da3-small", "da3-base", ..., "da3metric-large", "da3nested-giant-large" */
    char checkpoint[128];   /* depthanything3.checkpoint_name */
    int embed_dim, depth, num_heads, patch_size;
    int out_layers[4];
    int alt_start, rope_start, qknorm_start;
    int head_features;
    int has_camera_decoder; /* predicts extrinsics/intrinsics */
    int has_camera_encoder; /* accepts input poses */
    int has_aux_head;       /* ray head present: use_ray_pose possible */
    int has_sky;            /* mono/metric (DPT + sky) */
    int is_metric;          /* output in metres (metric-large after focal scaling, nested) */
    int is_nested;          /* any-view giant + metric-large pair */
    char weight_type[16];   /* "f32", "f16", "q8_0", "q4_k", "mixed" */
    int image_mean_std_from_file;
    float image_mean[3], image_std[3];
    size_t weights_bytes;   /* bytes of weights in backend buffers */
    size_t weights_read_bytes; /* of those, read from the file so far: the camera encoder and the
                                  aux ray head are read on the first call that needs them */
    int n_threads;          /* CPU threads this context uses */
    char backend[64];       /* name of the device the graph runs on, e.g. "CPU", "Vulkan0" */
    char linear_engine[16]; /* what runs the ViT's linear layers: "amx_bf16", "avx512_bf16" (precision
                               bf16), "f32", "int8" (q8_0/q4_k, VNNI builds), "ggml" (GPU backends) */
} da3_model_info;

DA3_API da3_status da3_get_model_info(const da3_context *ctx, da3_model_info *info);

/* ---- inference ------------------------------------------------------------------ */

typedef enum da3_resize_method {
    DA3_RESIZE_UPPER_BOUND = 0, /* longest side -> process_res (official default) */
    DA3_RESIZE_LOWER_BOUND = 1  /* shortest side -> process_res */
} da3_resize_method;

typedef enum da3_ref_view_strategy {
    DA3_REF_SADDLE_BALANCED = 0, /* official default */
    DA3_REF_FIRST = 1,
    DA3_REF_MIDDLE = 2,
    DA3_REF_SADDLE_SIM_RANGE = 3
} da3_ref_view_strategy;

typedef struct da3_infer_params {
    int process_res;                      /* default 504 */
    da3_resize_method resize_method;      /* default upper bound */
    da3_ref_view_strategy ref_view;       /* used with >= 3 views and no input poses */
    int use_ray_pose;                     /* pose from the aux ray head (needs has_aux_head) */
    int compute_aux;                      /* also return ray, ray_conf (implied by use_ray_pose) */
    int align_to_input_ext_scale;         /* with input poses: align prediction to them (default 1) */
    int max_image_pixels;                 /* input images larger than this are refused; default 100e6 */
    const char *const *taps;              /* optional: names of graph intermediates to return */
    int n_taps;
    int profile;                          /* 1: time each graph node; adds "time.backbone",
                                             "time.head", "time.camera", "time.total" and
                                             "time.op.<stage>.<OP>" per ggml op kind (seconds,
                                             1 element each). Slower: nodes run one by one.
                                             DA3CPP_PROFILE_NODES=1 in the environment also
                                             prints one line per node to stderr. */
} da3_infer_params;

DA3_API da3_infer_params da3_infer_default_params(void);

/* One input image: 8-bit RGB, rows of `stride` bytes (>= width*3). Borrowed. */
typedef struct da3_image {
    const uint8_t *data;
    int width, height;
    size_t stride;
} da3_image;

typedef struct da3_result da3_result;

/* Most views one inference call takes (n_views in [1, DA3_MAX_VIEWS]). */
#define DA3_MAX_VIEWS 256

/* Runs the network on n_views images as one scene (one batch along the view axis).
 * extrinsics ([n,3,4] or [n,4,4] world-to-camera, see ext_rows) and intrinsics ([n,3,3],
 * pixels at the ORIGINAL image size) are optional (NULL): both condition the network through
 * the camera encoder (needs has_camera_encoder); intrinsics alone serve models without a camera
 * decoder (metric scaling, the cameras of point clouds). DA3_ERR_INVALID_ARGUMENT, naming the
 * input: extrinsics without intrinsics, intrinsics alone on a model with a camera decoder, NaN
 * or inf, a focal length <= 0, a 4x4 whose last row is not (0, 0, 0, 1), a singular rotation.
 * On success *out is a new result the caller frees with da3_result_free(). An output with a
 * NaN or inf (non-finite weights or input) fails with DA3_ERR_NON_FINITE naming it. */
DA3_API da3_status da3_infer(da3_context *ctx, const da3_image *images, int n_views,
                             const float *extrinsics, int ext_rows, const float *intrinsics,
                             const da3_infer_params *params, da3_result **out);

/* Same, from an already preprocessed, normalized input [n_views, 3, height, width]
 * (height and width multiples of the patch size). Used by parity tests. */
DA3_API da3_status da3_infer_tensor(da3_context *ctx, const float *input, int n_views, int height,
                                    int width, const float *extrinsics, int ext_rows,
                                    const float *intrinsics, const da3_infer_params *params,
                                    da3_result **out);

/* Preprocessing alone (resize + crop exactly as the official InputProcessor). Writes the
 * processed size to *out_w and *out_h; if `out_rgb` is not NULL it must hold
 * n_views*out_h*out_w*3 bytes, if `out_norm` is not NULL n_views*3*out_h*out_w floats. */
DA3_API da3_status da3_preprocess(const da3_image *images, int n_views, int process_res,
                                  da3_resize_method method, const float mean[3], const float std[3],
                                  int *out_w, int *out_h, uint8_t *out_rgb, float *out_norm);

DA3_API void da3_result_free(da3_result *res);

/* Shape of the per-pixel outputs. */
DA3_API void da3_result_shape(const da3_result *res, int *n_views, int *height, int *width);

/* Named float32 outputs: "depth", "conf", "extrinsics", "intrinsics", "sky", "ray" [n,h',w',6],
 * "ray_conf", "cam_token", or a tap name requested in params. Returns NULL if absent; fills
 * shape (up to 4 dims, row-major) and *n_dims when given. The pointer is owned by res. */
DA3_API const float *da3_result_get(const da3_result *res, const char *name, int64_t shape[4],
                                    int *n_dims);
/* Processed images [n, h, w, 3] uint8, owned by res. */
DA3_API const uint8_t *da3_result_images(const da3_result *res);
/* 1 when depth is in metres. */
DA3_API int da3_result_is_metric(const da3_result *res);
/* Number of named outputs and their names (for iteration), owned by res. */
DA3_API int da3_result_count(const da3_result *res);
DA3_API const char *da3_result_name(const da3_result *res, int i);

/* ---- points and exports (issue #4) ------------------------------------------------
 * Back-projection of depth maps to a world-frame point cloud, and writers for glTF 2.0
 * binary (GLB) and COLMAP sparse models. They need no da3_context: they work on the
 * arrays of a da3_result (or any arrays of the same layout). Files are written to
 * "<path>.tmp.<pid>" and renamed over the target, so a failed call never leaves a
 * half-written file (DA3_ERR_IO with the OS reason when the directory is missing or
 * not writable). ref: official utils/export/glb.py and utils/export/colmap.py. */

typedef struct da3_points_params {
    double conf_thresh;              /* absolute confidence threshold, default 1.05 */
    double conf_thresh_percentile;   /* lower clamp: percentile of the pool, default 40; <= 0 disables */
    double ensure_thresh_percentile; /* upper clamp: percentile of the pool, default 90; >= 100 disables */
    int remove_sky;                  /* drop pixels with sky >= sky_thresh (when sky given), default 1 */
    double sky_thresh;               /* default 0.5 */
    int64_t num_max_points;          /* keep at most this many (deterministic subset); <= 0: all.
                                        default 1000000 */
    uint64_t seed;                   /* seed of the subsampling generator, default 0 */
} da3_points_params;

DA3_API da3_points_params da3_points_default_params(void);

/* A point cloud: M points, owned by the handle (free with da3_points_free). */
typedef struct da3_points da3_points;

/* Back-projects n_views depth maps into one world-frame point cloud.
 *  depth      [n, h, w] float32, required. Pixels with non-finite or <= 0 depth are skipped.
 *  conf       [n, h, w] float32 or NULL (no confidence filtering).
 *  sky        [n, h, w] float32 sky probability (or 0/1 mask) or NULL.
 *  images     [n, h, w, 3] uint8 RGB colours or NULL (grey 128).
 *  extrinsics [n, ext_rows, 4] world-to-camera (ext_rows 3, or 4 with last row 0 0 0 1).
 *  intrinsics [n, 3, 3] pixels at h x w.
 * Threshold (ref: glb.py get_conf_thresh): pool = conf of valid pixels (finite depth > 0,
 * finite conf) that are not sky, or of all valid pixels when sky is NULL or at most 10 are
 * not sky; thr = min(max(conf_thresh, P(pool, conf_thresh_percentile)),
 * P(pool, ensure_thresh_percentile)) with P numpy's default (linear) percentile.
 * A pixel (u = column, v = row) is kept when valid, conf >= thr (if conf), and not sky
 * (sky >= sky_thresh) when remove_sky; its world point is c2w * (depth * K^-1 [u, v, 1]).
 * When more than num_max_points are kept, exactly num_max_points are chosen with a seeded
 * generator (same inputs and seed -> same subset). Points are in (view, row, column) order.
 * Errors: DA3_ERR_INVALID_ARGUMENT for NULL/size errors, NaN/inf or singular intrinsics or
 * extrinsics. On success *out is a new handle; on failure NULL. */
DA3_API da3_status da3_points_compute(const float *depth, const float *conf, const float *sky,
                                      const uint8_t *images, int n_views, int height, int width,
                                      const float *extrinsics, int ext_rows, const float *intrinsics,
                                      const da3_points_params *params, da3_points **out);
DA3_API void da3_points_free(da3_points *pts);
/* Number of points M. */
DA3_API int64_t da3_points_count(const da3_points *pts);
/* [M, 3] float32 world coordinates; owned by pts (NULL when M == 0). */
DA3_API const float *da3_points_xyz(const da3_points *pts);
/* [M, 3] uint8 RGB; owned by pts (NULL when M == 0). */
DA3_API const uint8_t *da3_points_rgb(const da3_points *pts);
/* [M] int32 view index; owned by pts (NULL when M == 0). */
DA3_API const int32_t *da3_points_view(const da3_points *pts);
/* [M, 2] int32 pixel (x = column, y = row) at h x w; owned by pts (NULL when M == 0). */
DA3_API const int32_t *da3_points_pixel(const da3_points *pts);
/* The confidence threshold applied (NaN when conf was NULL). */
DA3_API double da3_points_conf_thresh(const da3_points *pts);

typedef struct da3_glb_params {
    int show_cameras;   /* one LINES frustum per view, default 1 */
    double camera_size; /* frustum depth as a fraction of the scene diagonal, default 0.03 */
} da3_glb_params;

DA3_API da3_glb_params da3_glb_default_params(void);

/* Writes a glTF 2.0 binary file: a POINTS primitive (POSITION float32, COLOR_0 normalized
 * uint8 RGB) with the n_points points, and with show_cameras one LINES primitive (8
 * segments, colour per view) per camera frustum, all in one mesh. Coordinates are
 * aligned to the first camera in glTF axes and centred on the points' median:
 * A = T(-median) * diag(1, -1, -1, 1) * w2c[0]; A (row-major 4x4) goes to A_out if not NULL.
 *  xyz [n_points, 3] float32 world (may be NULL when n_points == 0); rgb [n_points, 3] uint8
 *  or NULL (grey); extrinsics [n_views, ext_rows, 4], intrinsics [n_views, 3, 3] at height x
 *  width (the processed size); n_views >= 1. n_points == 0 gives a cameras-only (or empty)
 *  scene. Errors: DA3_ERR_INVALID_ARGUMENT, DA3_ERR_IO (cannot write `path`). */
DA3_API da3_status da3_export_glb(const char *path, const float *xyz, const uint8_t *rgb, int64_t n_points,
                                  const float *extrinsics, int ext_rows, const float *intrinsics,
                                  int n_views, int height, int width, const da3_glb_params *params,
                                  double A_out[16]);

typedef struct da3_colmap_params {
    int binary; /* 1: cameras.bin, images.bin, points3D.bin (default); 0: the .txt files */
} da3_colmap_params;

DA3_API da3_colmap_params da3_colmap_default_params(void);

/* Writes a COLMAP sparse model into `directory` (created if missing; its parent must exist).
 * One PINHOLE camera per view (id i + 1) of size original_sizes[i] = (width, height) with
 * fx, cx scaled by W0 / width and fy, cy by H0 / height; image i + 1 with that camera, the
 * pose of extrinsics[i] (rotation must be orthonormal) and name image_names[i] (unique,
 * non-empty; no whitespace in text mode); point k gets id k + 1, xyz, rgb (NULL: grey),
 * error 0 and a one-element track: its observation in image view[k] + 1 at
 * pixel[k] * (W0 / width, H0 / height). ref: official utils/export/colmap.py.
 *  xyz [n_points, 3] float32, view [n_points] int32 in [0, n_views), pixel [n_points, 2]
 *  int32 (column, row) inside width x height; original_sizes [n_views, 2] int32.
 * Errors: DA3_ERR_INVALID_ARGUMENT, DA3_ERR_IO. */
DA3_API da3_status da3_export_colmap(const char *directory, const float *xyz, const uint8_t *rgb,
                                     const int32_t *view, const int32_t *pixel, int64_t n_points,
                                     const float *extrinsics, int ext_rows, const float *intrinsics,
                                     int n_views, int height, int width, const int32_t *original_sizes,
                                     const char *const *image_names, const da3_colmap_params *params);

/* ---- diagnostics ---------------------------------------------------------------- */

/* y = x W^T through the graph builder of the network's linear layers, on the backend of `params`
 * (NULL: defaults). w [n, k] IEEE half bits, x [m, k] and y [m, n] float32, row-major. On the CPU
 * backend, m < 32 rows run through ggml's mul_mat (as the camera decoder's few tokens do) and
 * m >= 32 through our packed GEMM (as the ViT's linears). For tests that a build's f16 matrix
 * products accumulate in f32. Errors: DA3_ERR_INVALID_ARGUMENT (NULL, sizes <= 0 or over 2^26
 * elements per matrix), DA3_ERR_BACKEND. */
DA3_API da3_status da3_check_linear_f16(const uint16_t *w, const float *x, int m, int k, int n,
                                        const da3_context_params *params, float *y);

/* Cameras from a ray map, as da3_infer with use_ray_pose = 1 computes them from the aux head's
 * rays (seed 0 there): a weighted RANSAC homography per view, then its QL decomposition.
 * ref: official utils/ray_utils.py get_extrinsic_from_camray. For tests against the official
 * code on synthetic rays. ray [n, h, w, 6] float32 (world direction xyz, origin xyz),
 * ray_conf [n, h, w] float32 (weights; non-finite or negative: pixel ignored); height x width:
 * the processed image size in pixels (the intrinsics' frame); seed: the RANSAC stream
 * (std::mt19937_64). Writes extrinsics [n, 3, 4] (world-to-camera, OpenCV) and intrinsics
 * [n, 3, 3] (pixels) float32. Deterministic for a seed. Errors: DA3_ERR_INVALID_ARGUMENT (NULL,
 * sizes <= 0, fewer than 8 pixels per view, degenerate rays: no usable pixel, too few inliers,
 * a singular homography). */
DA3_API da3_status da3_ray_pose(const float *ray, const float *ray_conf, int n, int h, int w, int height,
                                int width, uint64_t seed, float *extrinsics, float *intrinsics);

/* ---- names and limits ----------------------------------------------------------
 * One source for the bindings: the name of each enum value as the Python API and the CLI
 * spell it (static string), or NULL for a value out of range; the values of each enum are
 * 0, 1, ... up to the first NULL. */

DA3_API const char *da3_resize_method_name(int value);     /* "upper_bound_resize", "lower_bound_resize" */
DA3_API const char *da3_ref_view_strategy_name(int value); /* "saddle_balanced", "first", "middle",
                                                               "saddle_sim_range" */
DA3_API const char *da3_backend_kind_name(int value);      /* "auto", "cpu", "gpu" */
DA3_API const char *da3_precision_name(int value);         /* "auto", "f32", "bf16" */

/* process_res accepted by da3_infer and da3_preprocess (14: the patch size). */
#define DA3_MIN_PROCESS_RES 14
#define DA3_MAX_PROCESS_RES 8192

/* OS error number (errno) behind the last DA3_ERR_IO failure on this thread (e.g. ENOENT for a
 * missing file, EACCES), 0 when the OS gave none or the last failure was not an I/O one. */
DA3_API int da3_last_errno(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPTH_ANYTHING_H */
