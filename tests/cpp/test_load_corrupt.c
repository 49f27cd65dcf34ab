/* Corrupt model files fed to da3_load from C: truncations at many points and random byte
 * changes in the header, metadata and tensor table of the fixture GGUF (seeded, reproducible).
 * Each load must end in DA3_OK or an error status whose message names the file; a model that
 * still loads also runs one tiny inference. Meant to run under ASan/UBSan/LeakSanitizer
 * (.ci/sanitizers.sh): any bad access, UB or leak fails it. Complements the Python fuzz test
 * (tests/test_robustness_model.py), which runs each load in a subprocess.
 * usage: da3_test_load_corrupt MODEL.gguf WORK_DIR   (exit 0 ok, 1 failures, 77 model missing) */
#include "depth_anything.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define N_FLIPS 120
#define N_TRUNC_HEAD 30
#define N_TRUNC_DATA 6
#define HEAD_BYTES 65536 /* covers the fixture's header, metadata and tensor table */

static unsigned long long g_rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n) { /* xorshift64*, uniform enough for offsets */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (unsigned)(((g_rng * 0x2545F4914F6CDD1Dull) >> 33) % n);
}

static int write_file(const char *path, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    size_t w;
    if (!f) return 0;
    w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n;
}

static int patch_file(const char *path, long off, const unsigned char *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    size_t w;
    if (!f) return 0;
    if (fseek(f, off, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    w = fwrite(bytes, 1, n, f);
    return fclose(f) == 0 && w == n;
}

/* One load: 1 ok, 0 rejected cleanly, -1 bad behaviour (reported). */
static int try_load(const char *path, const char *what) {
    da3_context *ctx = (da3_context *)0x1;
    da3_context_params cp = da3_context_default_params();
    da3_status st;
    cp.n_threads = 1;
    st = da3_load(path, &cp, &ctx);
    if (st != DA3_OK) {
        const char *msg = da3_last_error();
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (ctx != NULL || strstr(msg, base) == NULL || st == DA3_ERR_INTERNAL) {
            fprintf(stderr, "FAIL %s: status %s, ctx %p, message '%s'\n", what, da3_status_string(st), (void *)ctx, msg);
            return -1;
        }
        return 0;
    }
    {
        /* a file that still loads must run (or fail cleanly) */
        static unsigned char px[42 * 42 * 3];
        da3_image img;
        da3_infer_params ip = da3_infer_default_params();
        da3_result *res = NULL;
        da3_model_info info;
        memset(px, 128, sizeof(px));
        img.data = px, img.width = 42, img.height = 42, img.stride = 42 * 3;
        ip.process_res = 42;
        if (da3_get_model_info(ctx, &info) != DA3_OK) fprintf(stderr, "note %s: info: %s\n", what, da3_last_error());
        st = da3_infer(ctx, &img, 1, NULL, 0, NULL, &ip, &res);
        if (st == DA3_ERR_INTERNAL) fprintf(stderr, "note %s: infer: internal error: %s\n", what, da3_last_error());
        da3_result_free(res);
        da3_free(ctx);
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : "";
    const char *dir = argc > 2 ? argv[2] : ".";
    char work[4096];
    unsigned char *data;
    size_t size, head;
    FILE *f = fopen(model, "rb");
    int i, bad = 0, loaded = 0, rejected = 0;

    if (!f) {
        printf("SKIP: model %s not found\n", model);
        return 77;
    }
    fseek(f, 0, SEEK_END);
    size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    data = (unsigned char *)malloc(size);
    if (!data || fread(data, 1, size, f) != size) {
        fprintf(stderr, "cannot read %s\n", model);
        return 1;
    }
    fclose(f);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 1;
    }
    snprintf(work, sizeof(work), "%s/corrupt.gguf", dir);
    if (size < 2 * HEAD_BYTES) {
        printf("SKIP: %s is too small for this test (%zu bytes)\n", model, size);
        return 77;
    }
    head = HEAD_BYTES;

    /* truncations: many in the header/metadata/tensor table, a few in the tensor data */
    for (i = 0; i < N_TRUNC_HEAD + N_TRUNC_DATA; ++i) {
        char what[64];
        /* (the file may end in up to 32 bytes of alignment padding: cuts stop 64 bytes before) */
        size_t cut = i < N_TRUNC_HEAD ? (size_t)rnd((unsigned)head) : head + (size_t)rnd((unsigned)(size - head - 64));
        snprintf(what, sizeof(what), "truncated at %zu", cut);
        if (!write_file(work, data, cut)) return 1;
        if (try_load(work, what) != 0) {
            fprintf(stderr, "FAIL %s: not rejected\n", what);
            ++bad;
        }
    }

    /* byte changes in the first HEAD_BYTES, restored after each case */
    if (!write_file(work, data, size)) return 1;
    for (i = 0; i < N_FLIPS; ++i) {
        char what[96];
        long offs[4];
        int k, n = 1 + (int)rnd(4), r;
        for (k = 0; k < n; ++k) {
            static const unsigned char vals[5] = {0x00, 0xFF, 0x7F, 0x80, 0x01};
            unsigned char v = rnd(3) == 0 ? (unsigned char)rnd(256) : vals[rnd(5)];
            offs[k] = (long)rnd((unsigned)head);
            if (!patch_file(work, offs[k], &v, 1)) return 1;
        }
        snprintf(what, sizeof(what), "flip case %d (first offset %ld)", i, offs[0]);
        r = try_load(work, what);
        if (r < 0) ++bad;
        else if (r == 0) ++rejected;
        else ++loaded;
        for (k = 0; k < n; ++k) {
            if (!patch_file(work, offs[k], data + offs[k], 1)) return 1;
        }
    }
    /* the restored file loads again */
    if (try_load(work, "restored") != 1) {
        fprintf(stderr, "FAIL: the restored copy does not load\n");
        ++bad;
    }
    remove(work);
    free(data);
    printf("load_corrupt: %d byte-change cases: %d rejected, %d loaded; %d failures\n", N_FLIPS, rejected, loaded, bad);
    return bad ? 1 : 0;
}
