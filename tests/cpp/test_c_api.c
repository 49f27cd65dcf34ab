/* The C API used from C: load the fixture model, run one- and two-view inference at a small
 * process_res, read every output, check the error paths, free everything. Run under
 * ASan/UBSan/LeakSanitizer by .ci/sanitizers.sh (a leak or a bad access fails it).
 * usage: da3_test_c_api MODEL.gguf   (exit 0 ok, 1 failures, 77 model missing) */
#include "depth_anything.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failures = 0;

#define CHECK(cond, ...)                                        \
    do {                                                        \
        if (!(cond)) {                                          \
            fprintf(stderr, "FAIL line %d: ", __LINE__);        \
            fprintf(stderr, __VA_ARGS__);                       \
            fprintf(stderr, " (last error: %s)\n", da3_last_error()); \
            ++g_failures;                                       \
        }                                                       \
    } while (0)

/* A textured synthetic RGB image (rows padded to `stride` bytes). */
static unsigned char *make_image(int w, int h, size_t stride, int seed) {
    unsigned char *p = (unsigned char *)malloc(stride * (size_t)h);
    int x, y;
    if (!p) return NULL;
    memset(p, 0xAB, stride * (size_t)h);
    for (y = 0; y < h; ++y) {
        for (x = 0; x < w; ++x) {
            unsigned char *px = p + (size_t)y * stride + (size_t)x * 3;
            px[0] = (unsigned char)((x * 255) / w);
            px[1] = (unsigned char)((y * 255) / h);
            px[2] = (unsigned char)(((x / 8 + y / 8 + seed) % 2) * 200 + 20);
        }
    }
    return p;
}

static int all_finite(const float *v, size_t n, int positive) {
    size_t i;
    for (i = 0; i < n; ++i) {
        if (!isfinite(v[i]) || (positive && !(v[i] > 0.0f))) return 0;
    }
    return 1;
}

static size_t numel(const int64_t shape[4], int n_dims) {
    size_t n = 1;
    int i;
    for (i = 0; i < n_dims; ++i) n *= (size_t)shape[i];
    return n;
}

static void check_result(const da3_result *res, int views, int want_aux) {
    int n = 0, h = 0, w = 0, nd = 0, i;
    int64_t shape[4];
    const float *depth, *conf, *ext, *intr;
    da3_result_shape(res, &n, &h, &w);
    CHECK(n == views && h > 0 && w > 0 && h % 14 == 0 && w % 14 == 0, "result shape %d x %d x %d", n, h, w);
    depth = da3_result_get(res, "depth", shape, &nd);
    CHECK(depth && nd == 3 && shape[0] == n && shape[1] == h && shape[2] == w, "depth shape");
    if (depth) CHECK(all_finite(depth, numel(shape, nd), 1), "depth finite and positive");
    conf = da3_result_get(res, "conf", shape, &nd);
    CHECK(conf && nd == 3 && all_finite(conf, numel(shape, nd), 1), "conf");
    ext = da3_result_get(res, "extrinsics", shape, &nd);
    CHECK(ext && nd == 3 && shape[0] == n && shape[1] == 3 && shape[2] == 4 && all_finite(ext, (size_t)n * 12, 0),
          "extrinsics [n,3,4]");
    intr = da3_result_get(res, "intrinsics", shape, &nd);
    CHECK(intr && nd == 3 && shape[1] == 3 && shape[2] == 3 && intr[0] > 0.0f, "intrinsics [n,3,3]");
    if (want_aux) {
        const float *ray = da3_result_get(res, "ray", shape, &nd);
        CHECK(ray && nd == 4 && shape[3] == 6 && all_finite(ray, numel(shape, nd), 0), "ray [n,h,w,6]");
    }
    CHECK(da3_result_images(res) != NULL, "processed images");
    CHECK(da3_result_get(res, "no such output", NULL, NULL) == NULL, "unknown output is NULL");
    for (i = 0; i < da3_result_count(res); ++i) CHECK(da3_result_name(res, i) != NULL, "output name %d", i);
    CHECK(da3_result_name(res, da3_result_count(res)) == NULL, "name past the end is NULL");
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "";
    FILE *probe = fopen(path, "rb");
    da3_context *ctx = NULL;
    da3_context_params cp = da3_context_default_params();
    da3_infer_params ip = da3_infer_default_params();
    da3_model_info info;
    da3_result *res = NULL;
    da3_image img[2];
    unsigned char *px0, *px1;
    da3_status st;
    int ow = 0, oh = 0;

    if (!probe) {
        printf("SKIP: model %s not found\n", path);
        return 77;
    }
    fclose(probe);

    /* errors before any model */
    CHECK(da3_load(NULL, NULL, &ctx) == DA3_ERR_INVALID_ARGUMENT && ctx == NULL, "NULL path");
    CHECK(strlen(da3_last_error()) > 0, "last error set");
    CHECK(da3_load("/nonexistent/model.gguf", NULL, &ctx) == DA3_ERR_IO && ctx == NULL, "missing file");
    CHECK(strstr(da3_last_error(), "/nonexistent/model.gguf") != NULL, "error names the file");
    CHECK(da3_last_errno() == ENOENT, "errno of the missing file: %d", da3_last_errno());
    /* the names of enum values: one per value, NULL past the last */
    CHECK(strcmp(da3_resize_method_name(DA3_RESIZE_LOWER_BOUND), "lower_bound_resize") == 0 &&
              da3_resize_method_name(DA3_RESIZE_LOWER_BOUND + 1) == NULL && da3_resize_method_name(-1) == NULL,
          "resize method names");
    CHECK(strcmp(da3_ref_view_strategy_name(DA3_REF_SADDLE_SIM_RANGE), "saddle_sim_range") == 0 &&
              da3_ref_view_strategy_name(DA3_REF_SADDLE_SIM_RANGE + 1) == NULL,
          "ref view names");
    CHECK(strcmp(da3_backend_kind_name(DA3_BACKEND_CPU), "cpu") == 0 && da3_backend_kind_name(3) == NULL, "backend names");
    CHECK(strcmp(da3_precision_name(DA3_PRECISION_BF16), "bf16") == 0 && da3_precision_name(3) == NULL, "precision names");
    da3_free(NULL);
    da3_result_free(NULL);
    /* nested pair: two any-view files are refused before any weight is read, naming both */
    CHECK(da3_load_pair(path, NULL, NULL, &ctx) == DA3_ERR_INVALID_ARGUMENT && ctx == NULL, "pair: NULL metric path");
    CHECK(da3_load_pair(path, path, NULL, &ctx) == DA3_ERR_FORMAT && ctx == NULL, "pair: any-view twice");
    CHECK(strstr(da3_last_error(), "not a metric model") != NULL && strstr(da3_last_error(), "second") != NULL,
          "pair error names the problem and the order");

    cp.n_threads = 2;
    CHECK(cp.precision == DA3_PRECISION_AUTO, "default precision");
    cp.precision = 7;
    CHECK(da3_load(path, &cp, &ctx) == DA3_ERR_INVALID_ARGUMENT && ctx == NULL && strstr(da3_last_error(), "precision"),
          "precision out of range");
    cp.precision = DA3_PRECISION_AUTO;
    st = da3_load(path, &cp, &ctx);
    CHECK(st == DA3_OK && ctx != NULL, "load %s: %s", path, da3_status_string(st));
    if (!ctx) return 1;
    CHECK(da3_get_model_info(ctx, &info) == DA3_OK, "model info");
    CHECK(info.has_camera_decoder && info.patch_size == 14 && info.depth > 0 && info.n_threads == 2, "model info values");
    /* auto on this f16 file: the CPU's bf16 engine where it has one, else exact f32 */
    CHECK(strcmp(info.linear_engine, "f32") == 0 || strcmp(info.linear_engine, "amx_bf16") == 0 ||
              strcmp(info.linear_engine, "avx512_bf16") == 0,
          "auto: f32 or bf16-engine linears (%s)", info.linear_engine);

    px0 = make_image(150, 100, 150 * 3 + 5, 0);
    px1 = make_image(120, 90, 120 * 3, 1);
    if (!px0 || !px1) return 1;
    img[0].data = px0, img[0].width = 150, img[0].height = 100, img[0].stride = 150 * 3 + 5;
    img[1].data = px1, img[1].width = 120, img[1].height = 90, img[1].stride = 120 * 3;

    /* preprocessing alone */
    CHECK(da3_preprocess(img, 1, 140, DA3_RESIZE_UPPER_BOUND, NULL, NULL, &ow, &oh, NULL, NULL) == DA3_OK &&
              ow == 140 && oh > 0 && oh % 14 == 0,
          "preprocess size %dx%d", ow, oh);

    /* one view with the aux ray head, then two views (the second image is resized to the first) */
    ip.process_res = 140;
    ip.compute_aux = info.has_aux_head;
    st = da3_infer(ctx, img, 1, NULL, 0, NULL, &ip, &res);
    CHECK(st == DA3_OK && res, "infer 1 view: %s", da3_status_string(st));
    if (res) check_result(res, 1, ip.compute_aux);
    da3_result_free(res);
    res = NULL;
    ip.compute_aux = 0;
    st = da3_infer(ctx, img, 2, NULL, 0, NULL, &ip, &res);
    CHECK(st == DA3_OK && res, "infer 2 views: %s", da3_status_string(st));
    if (res) check_result(res, 2, 0);
    da3_result_free(res);
    res = NULL;

    /* bad arguments: a status and a message, never a crash; *out stays NULL */
    CHECK(da3_infer(ctx, img, 0, NULL, 0, NULL, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res, "0 views");
    CHECK(da3_infer(NULL, img, 1, NULL, 0, NULL, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res, "NULL ctx");
    img[1].stride = 10;
    CHECK(da3_infer(ctx, img + 1, 1, NULL, 0, NULL, &ip, &res) != DA3_OK && !res, "stride < width*3");
    img[1].stride = 120 * 3;
    img[1].width = 0;
    CHECK(da3_infer(ctx, img + 1, 1, NULL, 0, NULL, &ip, &res) != DA3_OK && !res, "zero width");
    img[1].width = 120;
    {
        float intr[9] = {100, 0, 60, 0, NAN, 45, 0, 0, 1};
        float ext[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
        CHECK(da3_infer(ctx, img + 1, 1, ext, 4, intr, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res &&
                  strstr(da3_last_error(), "intrinsics: contains NaN"),
              "NaN intrinsics: %s", da3_last_error());
        intr[4] = 100;
        CHECK(da3_infer(ctx, img + 1, 1, NULL, 0, intr, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res &&
                  strstr(da3_last_error(), "intrinsics alone"),
              "intrinsics alone on a model with a camera decoder: %s", da3_last_error());
        ext[15] = 2;
        CHECK(da3_infer(ctx, img + 1, 1, ext, 4, intr, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res &&
                  strstr(da3_last_error(), "last row"),
              "4x4 last row: %s", da3_last_error());
        ext[15] = 1;
        ext[10] = 0;
        CHECK(da3_infer(ctx, img + 1, 1, ext, 4, intr, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res &&
                  strstr(da3_last_error(), "singular"),
              "singular rotation: %s", da3_last_error());
    }
    ip.ref_view = (da3_ref_view_strategy)9;
    CHECK(da3_infer(ctx, img, 1, NULL, 0, NULL, &ip, &res) == DA3_ERR_INVALID_ARGUMENT && !res &&
              strstr(da3_last_error(), "ref_view_strategy must be one of 'saddle_balanced'"),
          "ref_view out of range: %s", da3_last_error());
    ip.ref_view = DA3_REF_SADDLE_BALANCED;
    ip.process_res = 0;
    CHECK(da3_infer(ctx, img, 1, NULL, 0, NULL, &ip, &res) != DA3_OK && !res, "process_res 0");

    da3_free(ctx);
    free(px0);
    free(px1);
    if (g_failures) {
        fprintf(stderr, "%d failure(s)\n", g_failures);
        return 1;
    }
    printf("c_api: ok\n");
    return 0;
}
