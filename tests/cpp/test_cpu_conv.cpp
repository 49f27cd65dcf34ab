// Our fused CPU convolution op (cpu_kernels.h: conv_cpu) against plain double-precision loops:
// 3x3 maps narrow enough for the direct kernel and wide enough for the Winograd F(4x4, 3x3) path
// (widths and heights not multiples of the 4x4 tile, several images, tile chunks that span tile
// rows), 1x1, f32 and f16 weights, with and without bias, input/output ReLU, one or two
// residuals, and thread counts that split the tile rows unevenly; and conv3x3_resized_cpu (the
// input resized from another size, align corners, with and without the UV embedding) against
// the resize done in double first, also followed by a 1x1 convolution in the same op. Exit code
// 0 on success; prints the failures.
#include "kernels/cpu_kernels.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace da3;

static int g_failures = 0;

struct conv_case {
    int W, H, cin, cout, N, ks;
    unsigned flags;
    bool bias, res, f16;
    int threads;
    int rw = 0, rh = 0;  // conv3x3_resized_cpu: the input is [rw, rh] resized to [W, H]
    bool uv = false;     // ... plus a UV embedding
    int c2 = 0;          // ... then a 1x1 convolution to c2 channels in the same op (with bias)
    bool res2 = false;   // conv_cpu: a second residual, added after res
    bool nan = false;    // one input value is NaN: it must reach the outputs it touches (ReLU included), as in PyTorch
};

// Align-corners bilinear resize of planes [n][c][rh][rw] to [W, H] in double, plus
// uvx[c][x] (c < C/2) or uvy[c - C/2][y] when given.
static std::vector<float> resize_ref(const std::vector<float> &x, int planes, int C, int rw, int rh, int W, int H,
                                     const std::vector<float> &uvx, const std::vector<float> &uvy) {
    std::vector<float> out((size_t)planes * W * H);
    for (int p = 0; p < planes; ++p)
        for (int y = 0; y < H; ++y)
            for (int xx = 0; xx < W; ++xx) {
                const double sy = H > 1 ? (double)y * (rh - 1) / (H - 1) : 0.0;
                const double sx = W > 1 ? (double)xx * (rw - 1) / (W - 1) : 0.0;
                const int y0 = std::min((int)sy, rh - 1), x0 = std::min((int)sx, rw - 1);
                const int y1 = std::min(y0 + 1, rh - 1), x1 = std::min(x0 + 1, rw - 1);
                const double fy = sy - y0, fx = sx - x0;
                auto at = [&](int yy, int xs) { return (double)x[((size_t)p * rh + yy) * rw + xs]; };
                double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
                const int c = p % C;
                if (!uvx.empty()) v += c < C / 2 ? uvx[(size_t)c * W + xx] : uvy[(size_t)(c - C / 2) * H + y];
                out[((size_t)p * H + y) * W + xx] = (float)v;
            }
    return out;
}

static void run_case(const conv_case &c) {
    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(be, c.threads);
    ggml_init_params ip = {ggml_tensor_overhead() * 16 + ggml_graph_overhead(), nullptr, true};
    ggml_context *ctx = ggml_init(ip);
    const bool rs = c.rw > 0;
    ggml_tensor *x = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, rs ? c.rw : c.W, rs ? c.rh : c.H, c.cin, c.N);
    ggml_tensor *uvx = c.uv ? ggml_new_tensor_2d(ctx, GGML_TYPE_F32, c.W, c.cin / 2) : nullptr;
    ggml_tensor *uvy = c.uv ? ggml_new_tensor_2d(ctx, GGML_TYPE_F32, c.H, c.cin / 2) : nullptr;
    ggml_tensor *w = ggml_new_tensor_4d(ctx, c.f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, c.ks, c.ks, c.cin, c.cout);
    ggml_tensor *b = c.bias ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, c.cout) : nullptr;
    ggml_tensor *r = c.res ? ggml_new_tensor_4d(ctx, GGML_TYPE_F32, c.W, c.H, c.cout, c.N) : nullptr;
    ggml_tensor *r2 = c.res2 ? ggml_new_tensor_4d(ctx, GGML_TYPE_F32, c.W, c.H, c.cout, c.N) : nullptr;
    ggml_tensor *w2 = c.c2 ? ggml_new_tensor_4d(ctx, c.f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, 1, 1, c.cout, c.c2) : nullptr;
    ggml_tensor *b2 = c.c2 ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, c.c2) : nullptr;
    ggml_tensor *y = rs ? conv3x3_resized_cpu(ctx, x, c.W, c.H, uvx, uvy, w, b, c.flags, w2, b2)
                        : conv_cpu(ctx, x, w, b, r, c.flags, r2);
    ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, be);

    std::mt19937 rng((unsigned)(c.W * 131 + c.H * 7 + c.cin * 3 + c.cout));
    std::normal_distribution<float> nd;
    auto fill = [&](ggml_tensor *t, std::vector<float> &v) {
        v.resize(ggml_nelements(t));
        for (float &e : v) e = nd(rng);
        if (t->type == GGML_TYPE_F16) {  // the reference uses the rounded values
            std::vector<ggml_fp16_t> h(v.size());
            ggml_fp32_to_fp16_row(v.data(), h.data(), (int64_t)v.size());
            ggml_fp16_to_fp32_row(h.data(), v.data(), (int64_t)v.size());
            ggml_backend_tensor_set(t, h.data(), 0, h.size() * sizeof(ggml_fp16_t));
        } else {
            ggml_backend_tensor_set(t, v.data(), 0, v.size() * sizeof(float));
        }
    };
    std::vector<float> xv, wv, bv(c.cout, 0.0f), rv, r2v, uxv, uyv, w2v, b2v;
    fill(x, xv);
    if (c.nan) {
        xv[xv.size() / 2 + 3] = std::nanf("");
        ggml_backend_tensor_set(x, xv.data(), 0, xv.size() * sizeof(float));
    }
    fill(w, wv);
    if (b) fill(b, bv);
    if (r) fill(r, rv);
    if (r2) fill(r2, r2v);
    if (c.uv) fill(uvx, uxv), fill(uvy, uyv);
    if (c.c2) fill(w2, w2v), fill(b2, b2v);
    if (rs) xv = resize_ref(xv, c.N * c.cin, c.cin, c.rw, c.rh, c.W, c.H, uxv, uyv);
    ggml_backend_graph_compute(be, gf);
    std::vector<float> out(ggml_nelements(y));
    ggml_backend_tensor_get(y, out.data(), 0, out.size() * sizeof(float));

    const int R = c.ks / 2;
    std::vector<double> ref((size_t)c.N * c.cout * c.H * c.W);
    for (int n = 0; n < c.N; ++n)
        for (int co = 0; co < c.cout; ++co)
            for (int yy = 0; yy < c.H; ++yy)
                for (int xx = 0; xx < c.W; ++xx) {
                    double acc = bv[co];
                    for (int ci = 0; ci < c.cin; ++ci)
                        for (int ky = 0; ky < c.ks; ++ky)
                            for (int kx = 0; kx < c.ks; ++kx) {
                                const int sy = yy + ky - R, sx = xx + kx - R;
                                if (sy < 0 || sy >= c.H || sx < 0 || sx >= c.W) continue;
                                double v = xv[(((size_t)n * c.cin + ci) * c.H + sy) * c.W + sx];
                                if ((c.flags & CONV_RELU_IN) && v < 0.0) v = 0.0;
                                acc += wv[(((size_t)co * c.cin + ci) * c.ks + ky) * c.ks + kx] * v;
                            }
                    if ((c.flags & CONV_RELU_OUT) && acc < 0.0) acc = 0.0;
                    const size_t off = (((size_t)n * c.cout + co) * c.H + yy) * c.W + xx;
                    if (r) acc += rv[off];
                    if (r2) acc += r2v[off];
                    ref[off] = acc;
                }
    if (c.c2) {  // the 1x1 on the 3x3 output
        const size_t P = (size_t)c.H * c.W;
        std::vector<double> ref2((size_t)c.N * c.c2 * P);
        for (int n = 0; n < c.N; ++n)
            for (int o = 0; o < c.c2; ++o)
                for (size_t px = 0; px < P; ++px) {
                    double acc = b2v[o];
                    for (int co = 0; co < c.cout; ++co) acc += w2v[(size_t)o * c.cout + co] * ref[((size_t)n * c.cout + co) * P + px];
                    ref2[((size_t)n * c.c2 + o) * P + px] = acc;
                }
        ref.swap(ref2);
    }
    double err = 0.0, mag = 1e-30;
    size_t lost_nan = 0, nans = 0;  // Winograd spreads a NaN over its whole tile: only losing one fails
    for (size_t i = 0; i < ref.size(); ++i) {
        if (std::isnan(ref[i])) {
            ++nans;
            lost_nan += !std::isnan(out[i]);
            continue;
        }
        if (std::isnan(out[i]) && c.nan) continue;
        err = std::max(err, std::fabs(out[i] - ref[i]));
        mag = std::max(mag, std::fabs(ref[i]));
    }
    if (c.nan && (lost_nan || !nans)) err = NAN;
    // direct sums: f32 rounding (~1e-7); Winograd F(4x4, 3x3): transforms with factors up to 8
    // and 1/24 cost about an order of magnitude more (measured: 2e-6 to 6e-6)
    const double rel = err / mag, tol = 2e-5;
    const bool ok = rel <= tol && std::isfinite(rel);
    if (rs) std::printf("resized from %dx%d%s%s: ", c.rw, c.rh, c.uv ? " + uv" : "", c.c2 ? " + 1x1" : "");
    std::printf("%dx%d %d->%d x%d k%d relu_in=%d relu_out=%d bias=%d res=%d res2=%d %s threads=%d: max rel err %.2e %s\n",
                c.W, c.H, c.cin, c.cout, c.N, c.ks, (c.flags & CONV_RELU_IN) ? 1 : 0, (c.flags & CONV_RELU_OUT) ? 1 : 0,
                c.bias, c.res, c.res2, c.f16 ? "f16" : "f32", c.threads, rel, ok ? "ok" : "FAIL");
    if (!ok) ++g_failures;
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_free(be);
}

int main() {
    const unsigned IN = CONV_RELU_IN, OUT = CONV_RELU_OUT;
    const conv_case cases[] = {
        // Winograd path (wide maps, >= 16 channels)
        {64, 4, 16, 16, 1, 3, 0, true, false, false, 1},
        {65, 7, 16, 24, 1, 3, IN, true, true, false, 3},
        {100, 9, 17, 32, 2, 3, OUT, false, false, false, 2},
        {144, 21, 64, 64, 1, 3, IN, true, true, true, 2},
        {504, 13, 32, 32, 1, 3, OUT, true, false, false, 3},
        {67, 5, 20, 16, 3, 3, IN | OUT, true, true, false, 4},
        // direct 3x3 (narrow map or few channels) and 1x1
        {30, 9, 16, 16, 1, 3, IN, true, true, false, 2},
        {70, 6, 8, 12, 2, 3, OUT, true, false, true, 3},
        {33, 10, 8, 12, 2, 1, 0, true, true, false, 2},
        // Winograd on a resized input: 2x, non-integer factors, odd sizes, with the UV embedding
        {80, 12, 16, 16, 1, 3, 0, true, false, false, 2, 40, 6},
        {130, 23, 20, 16, 2, 3, OUT, true, false, true, 3, 37, 11, true},
        {504, 9, 32, 16, 1, 3, OUT, false, false, false, 1, 288, 5, true},
        {97, 7, 16, 24, 1, 3, IN | OUT, true, false, false, 2, 97, 3},
        // ... followed by a 1x1 in the same op (the head's output_conv2 + logits): output widths
        // with partial vectors, more channels than one GEMM tile row block, f16 weights
        {504, 9, 32, 32, 1, 3, OUT, true, false, false, 2, 288, 5, true, 2},
        {131, 10, 16, 28, 2, 3, OUT, true, false, true, 3, 40, 6, true, 1},
        {97, 7, 16, 17, 1, 3, 0, false, false, false, 1, 50, 4, false, 3},
        // two residuals (the DPT fusion's x0 + RCU(x1)): Winograd and direct, and res2 alone
        {144, 9, 16, 24, 1, 3, IN, true, true, false, 2, 0, 0, false, 0, true},
        {36, 5, 16, 16, 2, 3, IN, true, true, true, 3, 0, 0, false, 0, true},
        {70, 6, 16, 16, 1, 3, IN, false, false, false, 2, 0, 0, false, 0, true},
        // a NaN input through the fused ReLUs (they used to turn it into 0): direct and Winograd
        {30, 9, 16, 16, 1, 3, IN | OUT, true, true, false, 2, 0, 0, false, 0, false, true},
        {30, 9, 16, 16, 1, 3, OUT, true, false, false, 2, 0, 0, false, 0, false, true},
        {144, 21, 16, 16, 1, 3, IN | OUT, true, false, false, 2, 0, 0, false, 0, false, true},
        {144, 21, 16, 16, 1, 3, OUT, true, false, false, 2, 0, 0, false, 0, false, true},
    };
    for (const conv_case &c : cases) run_case(c);
    if (g_failures) std::printf("%d case(s) failed\n", g_failures);
    return g_failures ? 1 : 0;
}
