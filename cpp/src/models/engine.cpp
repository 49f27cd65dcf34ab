// Model loading and one inference call: graph building, scheduling, postprocessing.
// ref: depth_anything_3/model/da3.py (DepthAnything3Net.forward)
#include "models/model.h"
#include "host/ray_pose.h"

#include "ggml-alloc.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>

namespace da3 {

// Graph capacity: tensors of the graph context, nodes + leafs of the graph, and the size of the
// scheduler's hash set. kGraphBase holds the backbone and a one-view head of every preset; the
// head is built once per view (build_head), 136 objects per view for da3-small (nodes + leafs
// and context tensors alike), more with the aux head or a nested model's second head:
// kGraphPerView leaves room for those, and build_head checks it after the first view.
static constexpr size_t kGraphBase = 16384, kGraphPerView = 512;

static size_t graph_capacity(int n_views) { return kGraphBase + (size_t)std::max(n_views, 1) * kGraphPerView; }

void reserve_graph(da3_context *ctx, int n_views) {
    const size_t size = graph_capacity(n_views);
    if (ctx->sched && ctx->sched_size >= size) return;
    ggml_backend_t backends[2] = {ctx->backend, ctx->cpu};
    const int nb = ctx->backend == ctx->cpu ? 1 : 2;
    ggml_backend_sched_t s = ggml_backend_sched_new(backends, nullptr, nb, size, false, true);
    if (!s) fail(DA3_ERR_BACKEND, "cannot create the graph scheduler");
    if (ctx->sched) ggml_backend_sched_free(ctx->sched);
    ctx->sched = s;
    ctx->sched_size = size;
}

static std::string detect_preset(const weight_map &wm, const model &m) {
    std::string p = wm.get_str_or("preset", "");
    if (!p.empty()) return p;
    const std::string ck = m.checkpoint;
    const int C = m.vit.hp.embed_dim;
    if (m.head.hp.has_sky) {
        if (ck.find("mono") != std::string::npos) return "da3mono-large";
        return "da3metric-large";
    }
    switch (C) {
        case 384: return "da3-small";
        case 768: return "da3-base";
        case 1024: return "da3-large";
        case 1536: return "da3-giant";
        default: return "da3-custom";
    }
}

// The metric branch of a nested model: backbone and DPT head under `vp` / `hp`
// ("m_vit." / "m_head." in one nested file, "vit." / "head." in the metric file of a pair).
static void load_metric_branch(const weight_map &wm, const std::string &vp, const std::string &hp, model &m) {
    load_vit(wm, vp, m.m_vit);
    load_head(wm, hp, hp, m.m_head);
    if (m.m_head.hp.dim_in != m.m_vit.hp.feat_dim()) wm.format_error(hp + " input width does not match " + vp);
}

// img.mean / img.std bounds: inputs are in [0, 1] before (x - mean) / std, so these are far
// outside any real normalization
static constexpr float kMaxImageMean = 1000.0f, kMinImageStd = 1e-3f, kMaxImageStd = 1000.0f;

void load_model(const weight_map &wm, model &m) {
    m.checkpoint = wm.get_str_or("checkpoint_name", "");
    load_vit(wm, "vit.", m.vit);
    load_head(wm, "head.", "head.", m.head);
    const int F = m.vit.hp.feat_dim();
    if (m.head.hp.dim_in != F) {
        wm.format_error("head input width " + std::to_string(m.head.hp.dim_in) + " does not match the backbone feature width " +
                        std::to_string(F));
    }
    m.has_cam_dec = wm.has("cam.bb0.weight");
    if (m.has_cam_dec) {
        if (m.vit.hp.alt_start == -1) wm.format_error("camera decoder present but the backbone has no camera token");
        load_camera_decoder(wm, "cam.", m.cam_dec);
    }
    m.has_cam_enc = !wm.names_with_prefix("cam_enc.").empty();
    if (m.has_cam_enc) load_camera_encoder(wm, "cam_enc.", m.cam_enc);
    m.nested = !wm.names_with_prefix("m_vit.").empty();
    if (m.nested) {
        load_metric_branch(wm, "m_vit.", "m_head.", m);
        if (!m.has_cam_dec || !m.m_head.hp.has_sky || m.m_vit.hp.alt_start != -1) {
            wm.format_error("nested file: expected an any-view model with a camera decoder (vit.*, head.*, cam.*) "
                            "and a metric model with a sky head (m_vit.*, m_head.*)");
        }
    }
    std::vector<float> mean = wm.get_float_array_or("img.mean", {0.485f, 0.456f, 0.406f});
    std::vector<float> stdv = wm.get_float_array_or("img.std", {0.229f, 0.224f, 0.225f});
    if (mean.size() != 3 || stdv.size() != 3) wm.format_error("img.mean and img.std must have 3 entries");
    for (int c = 0; c < 3; ++c) {
        if (!(std::fabs(mean[c]) <= kMaxImageMean) || !(stdv[c] >= kMinImageStd && stdv[c] <= kMaxImageStd)) {
            char v[192];
            std::snprintf(v, sizeof v, "[%d]: mean %.9g, std %.9g (|mean| <= %g, std in [%g, %g])", c, mean[c], stdv[c],
                          kMaxImageMean, kMinImageStd, kMaxImageStd);
            wm.format_error(std::string("metadata keys 'depthanything3.img.mean' / 'depthanything3.img.std' out of range ") + v);
        }
        m.mean[c] = mean[c];
        m.std[c] = stdv[c];
    }
    m.preset = m.nested ? wm.get_str_or("preset", "da3nested-giant-large") : detect_preset(wm, m);
    m.metric_scaling = m.preset == "da3metric-large";
    if (m.nested && m.metric_scaling) wm.format_error("inconsistent preset for a nested file");
}

// What a file of a nested pair holds, for the order/kind checks of load_model_pair.
enum class pair_kind { anyview, metric, mono, nested, no_camera };

static pair_kind classify(const weight_map &wm) {
    if (!wm.names_with_prefix("m_vit.").empty()) return pair_kind::nested;
    if (wm.has("head.scratch.sky_out2a.weight")) {
        const bool mono = wm.get_str_or("preset", "") == "da3mono-large" ||
                          wm.get_str_or("checkpoint_name", "").find("mono") != std::string::npos;
        return mono ? pair_kind::mono : pair_kind::metric;
    }
    return wm.has("cam.bb0.weight") ? pair_kind::anyview : pair_kind::no_camera;
}

void check_model_pair(const weight_map &any, const weight_map &met) {
    const pair_kind ka = classify(any), km = classify(met);
    if (ka != pair_kind::anyview || km != pair_kind::metric) {
        auto what = [](pair_kind k) -> std::string {
            switch (k) {
                case pair_kind::anyview: return "an any-view model";
                case pair_kind::metric: return "a metric model";
                case pair_kind::mono: return "a mono model (da3mono-large)";
                case pair_kind::nested: return "a one-file nested model (m_vit.*: load it alone)";
                default: return "a model without a camera decoder (cam.*)";
            }
        };
        std::string problem;
        if (ka == pair_kind::metric && km == pair_kind::anyview) {
            problem = "the two files are in the wrong order";
        } else {
            if (ka != pair_kind::anyview) problem = "'" + any.path() + "' is " + what(ka) + ", not an any-view model";
            if (km != pair_kind::metric) {
                problem += (problem.empty() ? "'" : "; '") + met.path() + "' is " + what(km) + ", not a metric model";
            }
        }
        fail(DA3_ERR_FORMAT, "nested pair '" + any.path() + "' + '" + met.path() + "': " + problem +
                                 "; expected the any-view model (e.g. da3-giant: camera decoder, no sky head) first "
                                 "and the metric model (da3metric-large: DPT head with sky) second");
    }
}

void prepare_model_for_cpu(model &m, int n_threads, bool bf16) {
    pack_vit_for_cpu(m.vit, n_threads, bf16);
    pack_vit_for_cpu(m.m_vit, n_threads, bf16);  // no blocks unless nested
    pack_head_for_cpu(m.head, n_threads);
    pack_head_for_cpu(m.m_head, n_threads);
    m.linear_engine = vit_linear_engine(m.vit);
}

void load_model_pair(const weight_map &any, const weight_map &met, model &m) {
    check_model_pair(any, met);
    load_model(any, m);
    load_metric_branch(met, "vit.", "head.", m);
    if (m.m_vit.hp.alt_start != -1) met.format_error("the metric model of a nested pair must not have a camera token (vit.alt_start)");
    std::vector<float> mean = met.get_float_array_or("img.mean", {0.485f, 0.456f, 0.406f});
    std::vector<float> stdv = met.get_float_array_or("img.std", {0.229f, 0.224f, 0.225f});
    for (int c = 0; c < 3; ++c) {
        if (mean.size() != 3 || stdv.size() != 3 || mean[c] != m.mean[c] || stdv[c] != m.std[c]) {
            met.format_error("img.mean/img.std differ from those of '" + any.path() + "' (one input feeds both models)");
        }
    }
    m.nested = true;
    m.preset = "da3nested-giant-large";
    m.metric_scaling = false;
}

// --- reference view selection (host side) ----------------------------------------------
// ref: depth_anything_3/model/reference_view_selector.py
static int select_reference_view(const std::vector<float> &cls, int S, int C, da3_ref_view_strategy s) {
    if (S <= 1 || s == DA3_REF_FIRST) return 0;
    if (s == DA3_REF_MIDDLE) return S / 2;
    std::vector<double> nrm(S), var(S);
    std::vector<std::vector<double>> f(S, std::vector<double>(C));
    for (int i = 0; i < S; ++i) {
        double ss = 0;
        for (int c = 0; c < C; ++c) ss += (double)cls[i * C + c] * cls[i * C + c];
        nrm[i] = std::sqrt(ss);
        double mean = 0;
        for (int c = 0; c < C; ++c) mean += (f[i][c] = cls[i * C + c] / nrm[i]);
        mean /= C;
        double v = 0;
        for (int c = 0; c < C; ++c) v += (f[i][c] - mean) * (f[i][c] - mean);
        var[i] = v / (C - 1);  // unbiased, as torch.var
    }
    auto sim = [&](int a, int b) {
        double d = 0;
        for (int c = 0; c < C; ++c) d += f[a][c] * f[b][c];
        return d - (a == b ? 1.0 : 0.0);
    };
    if (s == DA3_REF_SADDLE_SIM_RANGE) {
        int best = 0;
        double best_v = -1e300;
        for (int i = 0; i < S; ++i) {
            double mx = -1e300, mn = 1e300;
            for (int j = 0; j < S; ++j) {
                double v = sim(i, j);
                mx = std::max(mx, v);
                mn = std::min(mn, v);
            }
            if (mx - mn > best_v) best_v = mx - mn, best = i;
        }
        return best;
    }
    std::vector<double> score(S);
    for (int i = 0; i < S; ++i) {
        double acc = 0;
        for (int j = 0; j < S; ++j) acc += sim(i, j);
        score[i] = acc / (S - 1);
    }
    auto normalize = [&](std::vector<double> &v) {
        double mn = *std::min_element(v.begin(), v.end()), mx = *std::max_element(v.begin(), v.end());
        for (double &x : v) x = (x - mn) / (mx - mn + 1e-8);
    };
    normalize(score);
    normalize(nrm);
    normalize(var);
    int best = 0;
    double best_v = 1e300;
    for (int i = 0; i < S; ++i) {
        double b = std::fabs(score[i] - 0.5) + std::fabs(nrm[i] - 0.5) + std::fabs(var[i] - 0.5);
        if (b < best_v) best_v = b, best = i;
    }
    return best;
}

// --- graph execution -----------------------------------------------------------------------

struct graph_run {
    da3_context *ctx;
    graph_ctx g;
    ggml_context *gctx = nullptr;

    graph_run(da3_context *c, const da3_infer_params &p, int n_views) : ctx(c) {
        reserve_graph(ctx, n_views);
        const size_t size = graph_capacity(n_views);
        const size_t mem = ggml_tensor_overhead() * size + ggml_graph_overhead_custom(size, false);
        ctx->graph_meta.resize(mem);
        ggml_init_params ip = {mem, ctx->graph_meta.data(), true};
        gctx = ggml_init(ip);
        if (!gctx) fail(DA3_ERR_OUT_OF_MEMORY, "cannot create the graph context");
        g.ctx = gctx;
        g.gf = ggml_new_graph_custom(gctx, size, false);
        g.capacity = size;
        g.cpu_kernels = ctx->backend == ctx->cpu;
        for (int i = 0; i < p.n_taps; ++i) {
            if (p.taps[i]) g.requested_taps.insert(p.taps[i]);
        }
    }
    ~graph_run() {
        ggml_backend_sched_reset(ctx->sched);
        if (gctx) ggml_free(gctx);
    }

    void output(ggml_tensor *t) {
        ggml_set_output(t);
        ggml_build_forward_expand(g.gf, t);
    }

    // Per-stage wall time when profiling: nodes are attributed to the stage of the latest
    // node whose name starts with "vit.", "head." or "cam." (or "m." + those).
    struct profile_state {
        double stage_s[3] = {0, 0, 0};
        int stage = 0;
        std::map<std::string, double> op_s;  // "<stage>.<OP>" -> seconds
        bool print_nodes = std::getenv("DA3CPP_PROFILE_NODES") != nullptr;
        std::chrono::steady_clock::time_point last;
    } prof;
    bool profiling = false;

    static bool eval_cb(ggml_tensor *t, bool ask, void *user) {
        auto *self = static_cast<graph_run *>(user);
        if (ask) return true;  // observe every node
        auto now = std::chrono::steady_clock::now();
        std::string name = ggml_get_name(t);
        if (name.rfind("m.", 0) == 0) name = name.substr(2);
        if (name.rfind("vit.", 0) == 0) self->prof.stage = 0;
        else if (name.rfind("head.", 0) == 0) self->prof.stage = 1;
        else if (name.rfind("cam", 0) == 0) self->prof.stage = 2;
        static const char *const stages[3] = {"backbone", "head", "camera"};
        const double dt = std::chrono::duration<double>(now - self->prof.last).count();
        self->prof.stage_s[self->prof.stage] += dt;
        self->prof.op_s[std::string(stages[self->prof.stage]) + "." + ggml_op_desc(t)] += dt;
        if (self->prof.print_nodes) {  // DA3CPP_PROFILE_NODES=1: one line per node on stderr
            std::fprintf(stderr, "node %-9.3f %-16s %-40s [%lld %lld %lld %lld] %s\n", dt * 1e3, ggml_op_desc(t), ggml_get_name(t),
                         (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], ggml_type_name(t->type));
        }
        self->prof.last = now;
        return true;
    }

    void compute() {
        for (auto &kv : g.taps) ggml_build_forward_expand(g.gf, kv.second);
        ggml_backend_sched_reset(ctx->sched);
        if (!ggml_backend_sched_alloc_graph(ctx->sched, g.gf)) {
            fail(DA3_ERR_OUT_OF_MEMORY, "cannot allocate compute buffers for this input size");
        }
        if (ggml_graph_n_nodes(g.gf) > 0) {  // huge pages for the activations too (CPU buffers)
            ggml_backend_buffer_t buf = ggml_graph_node(g.gf, ggml_graph_n_nodes(g.gf) - 1)->buffer;
            if (buf && ggml_backend_buffer_is_host(buf) && ggml_backend_buffer_get_base(buf) != ctx->compute_buf_advised) {
                ctx->compute_buf_advised = ggml_backend_buffer_get_base(buf);
                advise_huge_pages(ctx->compute_buf_advised, ggml_backend_buffer_get_size(buf));
            }
        }
        for (auto &in : g.inputs) {
            if (!in.t->buffer) continue;  // not reachable from the outputs of this graph
            if (!in.f32.empty()) ggml_backend_tensor_set(in.t, in.f32.data(), 0, in.f32.size() * sizeof(float));
            if (!in.i32.empty()) ggml_backend_tensor_set(in.t, in.i32.data(), 0, in.i32.size() * sizeof(int32_t));
        }
        if (profiling) {
            ggml_backend_sched_set_eval_callback(ctx->sched, eval_cb, this);
            prof.last = std::chrono::steady_clock::now();
        }
        const ggml_status st = ggml_backend_sched_graph_compute(ctx->sched, g.gf);
        if (profiling) ggml_backend_sched_set_eval_callback(ctx->sched, nullptr, nullptr);
        if (st != GGML_STATUS_SUCCESS) fail(DA3_ERR_BACKEND, "graph computation failed");
    }

    static std::vector<float> read(ggml_tensor *t) {
        std::vector<float> v(ggml_nelements(t));
        if (t->type != GGML_TYPE_F32) fail(DA3_ERR_INTERNAL, std::string("output ") + ggml_get_name(t) + " is not f32");
        ggml_backend_tensor_get(t, v.data(), 0, v.size() * sizeof(float));
        return v;
    }
};

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

// Scales the any-view depth to the metric branch and fills the sky; returns the scale.
// ref: da3.py NestedDepthAnything3Net._apply_depth_alignment / _handle_sky_regions. PyTorch
// subsamples 100000 pixels for its quantiles when there are more; this uses all of them.
static float nested_align(float *depth, float *conf, const float *mdepth, const float *sky, size_t count) {
    std::vector<float> c;
    for (size_t i = 0; i < count; ++i)
        if (sky[i] < 0.3f) c.push_back(conf[i]);
    if (c.size() <= 10) fail(DA3_ERR_INVALID_ARGUMENT, "nested alignment: too few non-sky pixels");
    const float median_conf = quantile_linear(c, 0.5);
    double num = 0, den = 0;
    for (size_t i = 0; i < count; ++i) {
        if (conf[i] >= median_conf && sky[i] < 0.3f && mdepth[i] > 1e-2f && depth[i] > 1e-3f) {
            num += (double)mdepth[i] * depth[i];
            den += (double)depth[i] * depth[i];
        }
    }
    const float s = (float)(num / std::max(den, 1e-12));
    std::vector<float> ns;
    for (size_t i = 0; i < count; ++i) {
        depth[i] *= s;
        if (sky[i] < 0.3f) ns.push_back(depth[i]);
    }
    const float max_depth = std::min(quantile_linear(ns, 0.99), 200.0f);
    for (size_t i = 0; i < count; ++i) {
        if (!(sky[i] < 0.3f)) {
            depth[i] = max_depth;
            conf[i] = 1.0f;
        }
    }
    return s;
}

std::unique_ptr<da3_result> run_network(da3_context *ctx, const float *input, int n, int h, int w, const float *extrinsics,
                                        int ext_rows, const float *intrinsics, const da3_infer_params &p) {
    const model &m = ctx->model;
    const int P = m.vit.hp.patch_size;
    if (n <= 0 || h < P || w < P || h % P || w % P) {
        fail(DA3_ERR_INVALID_ARGUMENT, "input size " + std::to_string(h) + "x" + std::to_string(w) +
                                           " must be positive multiples of the patch size " + std::to_string(P));
    }
    const bool with_pose = extrinsics != nullptr;
    if (with_pose && !m.has_cam_enc) {
        fail(DA3_ERR_UNSUPPORTED, "this model file has no camera encoder: pose-conditioned input is not possible");
    }
    if (p.use_ray_pose && !m.head.hp.has_aux) {
        fail(DA3_ERR_UNSUPPORTED, "this model file has no aux ray head: use_ray_pose is not possible");
    }
    const bool aux = p.use_ray_pose || p.compute_aux;
    for (da3::weight_map *wm : {&ctx->wm, &ctx->m_wm}) {  // optional branches: read on first use
        if (with_pose) wm->ensure_loaded(weight_group::cam_enc);
        if (aux) wm->ensure_loaded(weight_group::aux);
    }
    const size_t per_view = (size_t)3 * h * w;

    // reference view: with >= 3 views and no input poses, chosen from the cls tokens entering
    // block alt_start-1; views are reordered so it comes first, outputs restored at the end.
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::vector<float> ref_tokens;  // [n, T, C] entering block alt_start-1, input view order
    if (n >= 3 && !with_pose && m.vit.hp.alt_start > 0 && p.ref_view != DA3_REF_FIRST) {
        ref_tokens = run_reference_stage(ctx, input, n, h, w, p);
        const int C = m.vit.hp.embed_dim;
        const size_t T = ref_tokens.size() / ((size_t)n * C);
        std::vector<float> cls((size_t)n * C);
        for (int i = 0; i < n; ++i) std::memcpy(&cls[(size_t)i * C], &ref_tokens[(size_t)i * T * C], C * sizeof(float));
        const int ref = select_reference_view(cls, n, C, p.ref_view);
        order.erase(order.begin() + ref);
        order.insert(order.begin(), ref);
    }
    std::vector<float> x((size_t)n * per_view);
    permute_views(input, x.data(), n, per_view, order);

    const auto t_start = std::chrono::steady_clock::now();
    graph_run r(ctx, p, n);
    r.profiling = p.profile != 0;
    ggml_tensor *img = r.g.input_f32("input", std::move(x), w, h, 3, n);
    ggml_tensor *cam_tokens = nullptr;
    std::vector<float> in_ext, in_intr;  // input poses in reference order: [n, 3, 4], [n, 3, 3]
    if (with_pose) {
        in_ext.resize((size_t)n * 12);
        in_intr.resize((size_t)n * 9);
        for (int i = 0; i < n; ++i) {
            std::memcpy(&in_ext[(size_t)i * 12], extrinsics + (size_t)order[i] * ext_rows * 4, 12 * sizeof(float));
            std::memcpy(&in_intr[(size_t)i * 9], intrinsics + (size_t)order[i] * 9, 9 * sizeof(float));
        }
        ggml_tensor *enc_in = r.g.input_f32("cam_enc.input", prepare_encoder_pose_enc(in_ext.data(), in_intr.data(), n, h, w), 9, n);
        cam_tokens = build_camera_encoder(r.g, m.cam_enc, enc_in);
    }
    // resume from the reference stage (the same blocks on the same tokens) unless the caller
    // asked for intermediates of the skipped blocks
    const int resume_block = m.vit.hp.alt_start - 1;
    ggml_tensor *resume = nullptr;
    if (!ref_tokens.empty() && p.n_taps == 0 && m.vit.hp.out_layers[0] >= resume_block) {
        const size_t per = ref_tokens.size() / n;
        std::vector<float> tok(ref_tokens.size());
        permute_views(ref_tokens.data(), tok.data(), n, per, order);
        ref_tokens.clear();
        resume = r.g.input_f32("vit.resume", std::move(tok), m.vit.hp.embed_dim, (int64_t)per / m.vit.hp.embed_dim, n);
    }
    vit_outputs vo = build_vit(r.g, m.vit, img, cam_tokens, -1, resume, resume_block);
    const int ph = h / P, pw = w / P;
    head_out ho = build_head(r.g, m.head, vo.feats, ph, pw, h, w, aux);
    r.output(ho.logits);
    if (ho.sky_logits) r.output(ho.sky_logits);
    if (aux && ho.aux_logits) r.output(ho.aux_logits);
    head_out mo;
    if (m.nested) {
        r.g.prefix = "m.";
        vit_outputs mvo = build_vit(r.g, m.m_vit, img, nullptr);
        mo = build_head(r.g, m.m_head, mvo.feats, ph, pw, h, w, false);
        r.g.prefix.clear();
        r.output(mo.logits);
        r.output(mo.sky_logits);
    }
    ggml_tensor *pose_enc = nullptr;
    if (m.has_cam_dec && !p.use_ray_pose) {
        pose_enc = build_camera_decoder(r.g, m.cam_dec, vo.cam_tok[3]);
        r.output(pose_enc);
    }
    r.compute();

    auto res = std::make_unique<da3_result>();
    res->n_views = n;
    res->height = h;
    res->width = w;
    const size_t hw = (size_t)h * w;

    // depth / conf: activations per the head config (exp, exp + 1)
    std::vector<float> logits = graph_run::read(ho.logits);  // [n, out_dim, h, w]
    std::vector<float> depth((size_t)n * hw), conf;
    if (m.head.hp.output_dim > 1) conf.resize((size_t)n * hw);
    head_activate(m.head.hp, logits.data(), n, h, w, depth.data(), conf.empty() ? nullptr : conf.data());
    std::vector<int> inv(n);
    for (int i = 0; i < n; ++i) inv[order[i]] = i;
    auto emit = [&](const std::string &name, const std::vector<float> &v, std::vector<int64_t> shape) {
        host_tensor &t = res->add(name, shape);
        permute_views(v.data(), t.data.data(), n, v.size() / n, inv);
    };

    std::vector<float> sky;
    if (ho.sky_logits) {
        sky = graph_run::read(ho.sky_logits);
        sky_activate(m.head.hp, sky.data(), sky.size());
        fill_sky_depth(depth.data(), sky.data(), depth.size());
    }
    res->is_metric = 0;
    std::vector<float> ext34, intr33;
    if (pose_enc) {
        std::vector<float> pe = graph_run::read(pose_enc);  // [n, 9]
        ext34.resize((size_t)n * 12);
        intr33.resize((size_t)n * 9);
        pose_enc_to_extri_intri(pe.data(), n, h, w, ext34.data(), intr33.data());
    }
    if (m.nested && !intr33.empty()) {
        std::vector<float> mlog = graph_run::read(mo.logits), msky = graph_run::read(mo.sky_logits);
        std::vector<float> mdepth((size_t)n * hw);
        head_activate(m.m_head.hp, mlog.data(), n, h, w, mdepth.data(), nullptr);
        sky_activate(m.m_head.hp, msky.data(), msky.size());
        fill_sky_depth(mdepth.data(), msky.data(), mdepth.size());
        apply_metric_scaling(mdepth.data(), n, hw, intr33.data());
        const float s = nested_align(depth.data(), conf.data(), mdepth.data(), msky.data(), depth.size());
        for (int i = 0; i < n; ++i)
            for (int r3 = 0; r3 < 3; ++r3) ext34[(size_t)i * 12 + r3 * 4 + 3] *= s;
        sky = std::move(msky);
        res->is_metric = 1;
    }
    if (with_pose && !ext34.empty()) {
        // ref: api.py _align_to_input_extrinsics_intrinsics (after the network): the input
        // poses are aligned to the prediction; the input intrinsics are returned.
        align_to_input_extrinsics(ext34.data(), in_ext.data(), n, depth.data(), depth.size(), p.align_to_input_ext_scale != 0);
        intr33 = in_intr;
    }
    if (m.metric_scaling && intrinsics) {
        // metric-large: metres = depth * focal / 300 (ref: utils/alignment.py apply_metric_scaling)
        apply_metric_scaling(depth.data(), n, hw, with_pose ? in_intr.data() : intrinsics);
        res->is_metric = 1;
    }
    if (ext34.empty() && intrinsics) {
        // no camera decoder (mono/metric): the given intrinsics, at the processed resolution,
        // and identity extrinsics describe the cameras, so points and exports work
        ext34.assign((size_t)n * 12, 0.0f);
        intr33.resize((size_t)n * 9);
        for (int i = 0; i < n; ++i) {
            for (int d = 0; d < 3; ++d) ext34[(size_t)i * 12 + d * 5] = 1.0f;
            std::memcpy(&intr33[(size_t)i * 9], intrinsics + (size_t)order[i] * 9, 9 * sizeof(float));
        }
    }
    res->add("ref_view", {1}).data[0] = (float)order[0];  // view placed first (input index)
    if (r.profiling) {
        res->add("time.backbone", {1}).data[0] = (float)r.prof.stage_s[0];
        res->add("time.head", {1}).data[0] = (float)r.prof.stage_s[1];
        res->add("time.camera", {1}).data[0] = (float)r.prof.stage_s[2];
        res->add("time.total", {1}).data[0] =
            (float)std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        for (const auto &kv : r.prof.op_s) res->add("time.op." + kv.first, {1}).data[0] = (float)kv.second;
    }
    emit("depth", depth, {n, h, w});
    if (!conf.empty()) emit("conf", conf, {n, h, w});
    if (!sky.empty()) emit("sky", sky, {n, h, w});
    if (!ext34.empty()) {
        emit("extrinsics", ext34, {n, 3, 4});
        emit("intrinsics", intr33, {n, 3, 3});
    }
    if (aux && ho.aux_logits) {
        // ray [n, h', w', 6] (linear) and ray_conf [n, h', w'] at 8x the patch grid
        const int ah = (int)ho.aux_logits->ne[1], aw = (int)ho.aux_logits->ne[0];
        std::vector<float> a = graph_run::read(ho.aux_logits);
        std::vector<float> ray((size_t)n * ah * aw * 6), ray_conf((size_t)n * ah * aw);
        aux_activate(m.head.hp, a.data(), n, ah, aw, ray.data(), ray_conf.data());
        if (p.use_ray_pose) {
            // ref: da3.py _process_ray_pose_estimation (seeded RANSAC, see ray_pose.h)
            ext34.resize((size_t)n * 12);
            intr33.resize((size_t)n * 9);
            ray_pose(ray.data(), ray_conf.data(), n, ah, aw, h, w, ray_pose_default_seed, ext34.data(), intr33.data());
            emit("extrinsics", ext34, {n, 3, 4});
            emit("intrinsics", intr33, {n, 3, 3});
        }
        emit("ray", ray, {n, ah, aw, 6});
        emit("ray_conf", ray_conf, {n, ah, aw});
    }
    // A NaN or inf (a non-finite weight, an extreme input pose) must not pass as a result.
    for (const char *name : {"depth", "conf", "sky", "extrinsics", "intrinsics", "ray", "ray_conf"}) {
        const host_tensor *t = res->find(name);
        if (!t) continue;
        size_t bad = 0;
        for (float v : t->data) bad += !std::isfinite(v);
        if (bad) {
            fail(DA3_ERR_NON_FINITE, std::string("the network output '") + name + "' has " + std::to_string(bad) + " non-finite values (NaN or inf) of " +
                                         std::to_string(t->data.size()) +
                                         ": the model's weights or metadata, or the input (images, poses), are invalid");
        }
    }
    for (auto &kv : r.g.taps) {
        ggml_tensor *t = kv.second;
        std::vector<float> v = graph_run::read(t);
        // PyTorch order with the view axis first: maps [W,H,C,N], tokens [C,T,N], vectors [F,N]
        const std::string base = kv.first.rfind("m.", 0) == 0 ? kv.first.substr(2) : kv.first;
        const int k = base.rfind("head.", 0) == 0 ? 3 : (base.rfind("vit.cam_tok", 0) == 0 || base.rfind("cam", 0) == 0) ? 1 : 2;
        std::vector<int64_t> shape;
        for (int d = k; d >= 0; --d) shape.push_back(t->ne[d]);
        host_tensor &ht = res->add(kv.first, shape);
        permute_views(v.data(), ht.data.data(), n, v.size() / n, inv);  // back to input view order
    }
    return res;
}

}  // namespace da3

da3_context::~da3_context() {
    if (sched) ggml_backend_sched_free(sched);
    if (backend && backend != cpu) ggml_backend_free(backend);
    if (cpu) ggml_backend_free(cpu);
}
