// Graph capacity, the scheduler, and running one graph (graph_run.h).
#include "models/graph_run.h"

#include "ggml-alloc.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

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

graph_run::graph_run(da3_context *c, const da3_infer_params &p, int n_views) : ctx(c) {
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
    prof.print_nodes = std::getenv("DA3CPP_PROFILE_NODES") != nullptr;
}

graph_run::~graph_run() {
    ggml_backend_sched_reset(ctx->sched);
    if (gctx) ggml_free(gctx);
}

void graph_run::output(ggml_tensor *t) {
    ggml_set_output(t);
    ggml_build_forward_expand(g.gf, t);
}

bool graph_run::eval_cb(ggml_tensor *t, bool ask, void *user) {
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
    if (self->prof.print_nodes) {
        std::fprintf(stderr, "node %-9.3f %-16s %-40s [%lld %lld %lld %lld] %s\n", dt * 1e3, ggml_op_desc(t), ggml_get_name(t),
                     (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], ggml_type_name(t->type));
    }
    self->prof.last = now;
    return true;
}

void graph_run::compute() {
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

std::vector<float> graph_run::read(ggml_tensor *t) {
    std::vector<float> v(ggml_nelements(t));
    if (t->type != GGML_TYPE_F32) fail(DA3_ERR_INTERNAL, std::string("output ") + ggml_get_name(t) + " is not f32");
    ggml_backend_tensor_get(t, v.data(), 0, v.size() * sizeof(float));
    return v;
}

}  // namespace da3
