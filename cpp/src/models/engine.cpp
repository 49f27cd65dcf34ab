// One inference call: checks, reference view, the kind's graph (models/builder.h), outputs.
// ref: depth_anything_3/model/da3.py (DepthAnything3Net.forward)
#include "models/builder.h"
#include "host/ray_pose.h"
#include "host/reference_view.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

namespace da3 {

// The blocks before alt_start-1 (per view, no cross-view attention) on all views: returns the
// tokens entering block alt_start-1, [n, T, C], whose cls tokens choose the reference view; the
// main graph resumes from them instead of recomputing those blocks.
static std::vector<float> run_reference_stage(da3_context *ctx, const float *input, int n, int h, int w,
                                              const da3_infer_params &p) {
    const model &m = ctx->model;
    da3_infer_params q = p;
    q.n_taps = 0;
    graph_run r(ctx, q, n);
    ggml_tensor *img = r.g.input_f32("input", std::vector<float>(input, input + (size_t)n * 3 * h * w), w, h, 3, n);
    vit_outputs vo = build_vit(r.g, m.vit, img, nullptr, m.vit.hp.alt_start - 1);
    ggml_tensor *x = ggml_cont(r.gctx, vo.ref_feat);
    r.output(x);
    r.compute();
    return graph_run::read(x);
}

// Copies per-view blocks of `src` ([n, ...]) into `dst` with view order `order` (dst[i] = src[order[i]]).
static void permute_views(const float *src, float *dst, int n, size_t per_view, const std::vector<int> &order) {
    for (int i = 0; i < n; ++i) std::memcpy(dst + (size_t)i * per_view, src + (size_t)order[i] * per_view, per_view * sizeof(float));
}

static void check_call(const model &m, int n, int h, int w, bool with_pose, const da3_infer_params &p) {
    const int P = m.vit.hp.patch_size;
    if (n <= 0 || h < P || w < P || h % P || w % P) {
        fail(DA3_ERR_INVALID_ARGUMENT, "input size " + std::to_string(h) + "x" + std::to_string(w) +
                                           " must be positive multiples of the patch size " + std::to_string(P));
    }
    if (with_pose && !m.has_cam_enc) {
        fail(DA3_ERR_UNSUPPORTED, "this model file has no camera encoder: pose-conditioned input is not possible");
    }
    if (p.use_ray_pose && !m.head.hp.has_aux) {
        fail(DA3_ERR_UNSUPPORTED, "this model file has no aux ray head: use_ray_pose is not possible");
    }
}

// Reference view: with >= 3 views and no input poses, chosen from the cls tokens entering block
// alt_start-1; views are reordered so it comes first (in.order), outputs restored at the end.
static void choose_reference_view(da3_context *ctx, const float *input, call_inputs &in, bool with_pose) {
    const model &m = ctx->model;
    const int n = in.n;
    in.order.resize(n);
    std::iota(in.order.begin(), in.order.end(), 0);
    if (n < 3 || with_pose || m.vit.hp.alt_start <= 0 || in.p.ref_view == DA3_REF_FIRST) return;
    std::vector<float> tokens = run_reference_stage(ctx, input, n, in.h, in.w, in.p);  // [n, T, C], input order
    const int C = m.vit.hp.embed_dim;
    const size_t T = tokens.size() / ((size_t)n * C);
    std::vector<float> cls((size_t)n * C);
    for (int i = 0; i < n; ++i) std::memcpy(&cls[(size_t)i * C], &tokens[(size_t)i * T * C], C * sizeof(float));
    const int ref = select_reference_view(cls, n, C, in.p.ref_view);
    in.order.erase(in.order.begin() + ref);
    in.order.insert(in.order.begin(), ref);
    in.ref_tokens.resize(tokens.size());
    permute_views(tokens.data(), in.ref_tokens.data(), n, tokens.size() / n, in.order);
}

// No camera decoder (mono/metric, or ray pose): the given intrinsics, at the processed
// resolution, and identity extrinsics describe the cameras, so points and exports work.
static void given_cameras(const call_inputs &in, call_outputs &out) {
    if (!out.ext34.empty() || !in.intrinsics) return;
    out.ext34.assign((size_t)in.n * 12, 0.0f);
    out.intr33.resize((size_t)in.n * 9);
    for (int i = 0; i < in.n; ++i) {
        for (int d = 0; d < 3; ++d) out.ext34[(size_t)i * 12 + d * 5] = 1.0f;
        std::memcpy(&out.intr33[(size_t)i * 9], in.intrinsics + (size_t)in.order[i] * 9, 9 * sizeof(float));
    }
}

// Writes the outputs to `res` in input view order.
struct result_writer {
    da3_result &res;
    const call_inputs &in;
    std::vector<int> inv;  // inv[input index] = position in reference order

    result_writer(da3_result &r, const call_inputs &c) : res(r), in(c), inv(c.n) {
        for (int i = 0; i < c.n; ++i) inv[c.order[i]] = i;
    }
    void emit(const std::string &name, const std::vector<float> &v, std::vector<int64_t> shape) {
        host_tensor &t = res.add(name, std::move(shape));
        permute_views(v.data(), t.data.data(), in.n, v.size() / in.n, inv);
    }
    void timings(const graph_run &r, std::chrono::steady_clock::time_point t_start);
    void maps_and_cameras(const call_outputs &out);
    void aux(const model &m, ggml_tensor *aux_logits);
    void taps(graph_run &r);
};

void result_writer::timings(const graph_run &r, std::chrono::steady_clock::time_point t_start) {
    res.add("time.backbone", {1}).data[0] = (float)r.prof.stage_s[0];
    res.add("time.head", {1}).data[0] = (float)r.prof.stage_s[1];
    res.add("time.camera", {1}).data[0] = (float)r.prof.stage_s[2];
    res.add("time.total", {1}).data[0] = (float)std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    for (const auto &kv : r.prof.op_s) res.add("time.op." + kv.first, {1}).data[0] = (float)kv.second;
}

void result_writer::maps_and_cameras(const call_outputs &out) {
    const int n = in.n, h = in.h, w = in.w;
    emit("depth", out.depth, {n, h, w});
    if (!out.conf.empty()) emit("conf", out.conf, {n, h, w});
    if (!out.sky.empty()) emit("sky", out.sky, {n, h, w});
    if (!out.ext34.empty()) {
        emit("extrinsics", out.ext34, {n, 3, 4});
        emit("intrinsics", out.intr33, {n, 3, 3});
    }
}

// ray [n, h', w', 6] (linear) and ray_conf [n, h', w'] at 8x the patch grid; with use_ray_pose
// the cameras from them. ref: da3.py _process_ray_pose_estimation (seeded RANSAC, see ray_pose.h)
void result_writer::aux(const model &m, ggml_tensor *aux_logits) {
    const int n = in.n, ah = (int)aux_logits->ne[1], aw = (int)aux_logits->ne[0];
    std::vector<float> a = graph_run::read(aux_logits);
    std::vector<float> ray((size_t)n * ah * aw * 6), ray_conf((size_t)n * ah * aw);
    aux_activate(m.head.hp, a.data(), n, ah, aw, ray.data(), ray_conf.data());
    if (in.p.use_ray_pose) {
        std::vector<float> ext34((size_t)n * 12), intr33((size_t)n * 9);
        ray_pose(ray.data(), ray_conf.data(), n, ah, aw, in.h, in.w, ray_pose_default_seed, ext34.data(), intr33.data());
        emit("extrinsics", ext34, {n, 3, 4});
        emit("intrinsics", intr33, {n, 3, 3});
    }
    emit("ray", ray, {n, ah, aw, 6});
    emit("ray_conf", ray_conf, {n, ah, aw});
}

// Taps in PyTorch order with the view axis first: maps [W,H,C,N], tokens [C,T,N], vectors [F,N].
void result_writer::taps(graph_run &r) {
    for (auto &kv : r.g.taps) {
        ggml_tensor *t = kv.second;
        std::vector<float> v = graph_run::read(t);
        const std::string base = kv.first.rfind("m.", 0) == 0 ? kv.first.substr(2) : kv.first;
        const int k = base.rfind("head.", 0) == 0 ? 3 : (base.rfind("vit.cam_tok", 0) == 0 || base.rfind("cam", 0) == 0) ? 1 : 2;
        std::vector<int64_t> shape;
        for (int d = k; d >= 0; --d) shape.push_back(t->ne[d]);
        emit(kv.first, v, shape);
    }
}

// A NaN or inf (a non-finite weight, an extreme input pose) must not pass as a result.
static void check_finite(const da3_result &res) {
    for (const char *name : {"depth", "conf", "sky", "extrinsics", "intrinsics", "ray", "ray_conf"}) {
        const host_tensor *t = res.find(name);
        if (!t) continue;
        size_t bad = 0;
        for (float v : t->data) bad += !std::isfinite(v);
        if (bad) {
            fail(DA3_ERR_NON_FINITE, std::string("the network output '") + name + "' has " + std::to_string(bad) +
                                         " non-finite values (NaN or inf) of " + std::to_string(t->data.size()) +
                                         ": the model's weights or metadata, or the input (images, poses), are invalid");
        }
    }
}

std::unique_ptr<da3_result> run_network(da3_context *ctx, const float *input, int n, int h, int w, const float *extrinsics,
                                        int ext_rows, const float *intrinsics, const da3_infer_params &p) {
    const model &m = ctx->model;
    const bool with_pose = extrinsics != nullptr;
    check_call(m, n, h, w, with_pose, p);
    call_inputs in{p, n, h, w, p.use_ray_pose || p.compute_aux, intrinsics, {}, {}, {}, {}};
    for (da3::weight_map *wm : {&ctx->wm, &ctx->m_wm}) {  // optional branches: read on first use
        if (with_pose) wm->ensure_loaded(weight_group::cam_enc);
        if (in.aux) wm->ensure_loaded(weight_group::aux);
    }
    choose_reference_view(ctx, input, in, with_pose);
    const size_t per_view = (size_t)3 * h * w;
    std::vector<float> x((size_t)n * per_view);
    permute_views(input, x.data(), n, per_view, in.order);
    if (with_pose) {  // input poses in reference order
        in.in_ext.resize((size_t)n * 12);
        in.in_intr.resize((size_t)n * 9);
        for (int i = 0; i < n; ++i) {
            std::memcpy(&in.in_ext[(size_t)i * 12], extrinsics + (size_t)in.order[i] * ext_rows * 4, 12 * sizeof(float));
            std::memcpy(&in.in_intr[(size_t)i * 9], intrinsics + (size_t)in.order[i] * 9, 9 * sizeof(float));
        }
    }

    const auto t_start = std::chrono::steady_clock::now();
    graph_run r(ctx, p, n);
    r.profiling = p.profile != 0;
    ggml_tensor *img = r.g.input_f32("input", std::move(x), w, h, 3, n);
    std::unique_ptr<model_builder> builder = make_builder(m);
    builder->build(r, img, in);
    r.compute();
    call_outputs out;
    builder->postprocess(in, out);
    given_cameras(in, out);

    auto res = std::make_unique<da3_result>();
    res->n_views = n;
    res->height = h;
    res->width = w;
    res->is_metric = out.is_metric;
    result_writer wr(*res, in);
    res->add("ref_view", {1}).data[0] = (float)in.order[0];  // view placed first (input index)
    if (r.profiling) wr.timings(r, t_start);
    wr.maps_and_cameras(out);
    if (in.aux && builder->aux_logits()) wr.aux(m, builder->aux_logits());
    check_finite(*res);
    wr.taps(r);
    return res;
}

}  // namespace da3

da3_context::~da3_context() {
    if (sched) ggml_backend_sched_free(sched);
    if (backend && backend != cpu) ggml_backend_free(backend);
    if (cpu) ggml_backend_free(cpu);
}
