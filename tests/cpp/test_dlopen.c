/* libdepth_anything as a dlopen consumer sees it (a Go backend such as LocalAI's loads one
 * such library per CPU variant): only da3_* symbols are exported, and the fixture model loads
 * and runs through function pointers looked up with dlsym.
 * usage: da3_test_dlopen LIBRARY.so MODEL.gguf   (exit 0 ok, 1 failures, 77 model missing) */
#include "depth_anything.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failures = 0;
#define CHECK(cond, ...)                                 \
    do {                                                 \
        if (!(cond)) {                                   \
            fprintf(stderr, "FAIL line %d: ", __LINE__); \
            fprintf(stderr, __VA_ARGS__);                \
            fprintf(stderr, "\n");                       \
            ++g_failures;                                \
        }                                                \
    } while (0)

#define SYM(lib, name) ((__typeof__(&name))dlsym(lib, #name))

int main(int argc, char **argv) {
    void *lib;
    FILE *f;
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIBRARY.so MODEL.gguf\n", argv[0]);
        return 1;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "FAIL: dlopen(%s): %s\n", argv[1], dlerror());
        return 1;
    }
    /* internals stay hidden: ggml and the C++ core are not part of the ABI */
    CHECK(dlsym(lib, "ggml_init") == NULL, "ggml_init is exported");
    CHECK(dlsym(lib, "gguf_init_from_file") == NULL, "gguf_init_from_file is exported");

    {
        __typeof__(&da3_load) load = SYM(lib, da3_load);
        __typeof__(&da3_free) free_ctx = SYM(lib, da3_free);
        __typeof__(&da3_last_error) last_error = SYM(lib, da3_last_error);
        __typeof__(&da3_context_default_params) ctx_defaults = SYM(lib, da3_context_default_params);
        __typeof__(&da3_infer_default_params) infer_defaults = SYM(lib, da3_infer_default_params);
        __typeof__(&da3_infer) infer = SYM(lib, da3_infer);
        __typeof__(&da3_result_shape) result_shape = SYM(lib, da3_result_shape);
        __typeof__(&da3_result_get) result_get = SYM(lib, da3_result_get);
        __typeof__(&da3_result_free) result_free = SYM(lib, da3_result_free);
        __typeof__(&da3_get_build_info) build_info = SYM(lib, da3_get_build_info);
        da3_context *ctx = NULL;
        da3_context_params cp;
        da3_infer_params ip;
        da3_result *res = NULL;
        da3_image img;
        unsigned char *pixels;
        int w = 70, h = 42, x, y, n = 0, oh = 0, ow = 0, nd = 0;
        int64_t shape[4];
        const float *depth, *ext;
        if (!load || !free_ctx || !last_error || !ctx_defaults || !infer_defaults || !infer || !result_shape ||
            !result_get || !result_free || !build_info) {
            fprintf(stderr, "FAIL: a da3_* symbol is missing: %s\n", dlerror());
            return 1;
        }
        CHECK(build_info() != NULL, "da3_get_build_info returned NULL");
        CHECK(load("/nonexistent/model.gguf", NULL, &ctx) != DA3_OK && ctx == NULL, "loading a missing file");
        CHECK(strstr(last_error(), "nonexistent") != NULL, "last error names the file: %s", last_error());
        f = fopen(argv[2], "rb");
        if (!f) {
            fprintf(stderr, "SKIP: model missing: %s\n", argv[2]);
            dlclose(lib);
            return 77;
        }
        fclose(f);
        cp = ctx_defaults();
        cp.n_threads = 1;
        if (load(argv[2], &cp, &ctx) != DA3_OK) {
            fprintf(stderr, "FAIL: da3_load: %s\n", last_error());
            return 1;
        }
        pixels = (unsigned char *)malloc((size_t)w * h * 3);
        for (y = 0; y < h; ++y)
            for (x = 0; x < w; ++x) {
                unsigned char *p = pixels + ((size_t)y * w + x) * 3;
                p[0] = (unsigned char)(x * 255 / w);
                p[1] = (unsigned char)(y * 255 / h);
                p[2] = (unsigned char)(((x / 7 + y / 7) % 2) * 200 + 20);
            }
        img.data = pixels;
        img.width = w;
        img.height = h;
        img.stride = (size_t)w * 3;
        ip = infer_defaults();
        ip.process_res = 70;
        CHECK(infer(ctx, &img, 1, NULL, 0, NULL, &ip, &res) == DA3_OK, "da3_infer: %s", last_error());
        if (res) {
            size_t i, count;
            result_shape(res, &n, &oh, &ow);
            CHECK(n == 1 && oh == 42 && ow == 70, "shape %d x %d x %d", n, oh, ow);
            depth = result_get(res, "depth", shape, &nd);
            CHECK(depth != NULL && nd == 3, "depth output");
            count = depth ? (size_t)shape[0] * shape[1] * shape[2] : 0;
            for (i = 0; i < count; ++i) {
                if (!isfinite(depth[i]) || !(depth[i] > 0.0f)) {
                    CHECK(0, "depth[%zu] = %g", i, depth[i]);
                    break;
                }
            }
            ext = result_get(res, "extrinsics", shape, &nd);
            CHECK(ext != NULL && nd == 3 && shape[1] == 3 && shape[2] == 4, "extrinsics output");
            result_free(res);
        }
        free(pixels);
        free_ctx(ctx);
    }
    dlclose(lib);
    if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
    else printf("ok\n");
    return g_failures ? 1 : 0;
}
