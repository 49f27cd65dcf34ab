// A loaded DA3 network: backbone, head, camera modules, and the per-context compute state.
#pragma once

#include "graph/camera.h"
#include "graph/head.h"
#include "graph/vit.h"
#include "gguf/schema.h"
#include "gguf/weights.h"

#include "ggml-backend.h"

#include <memory>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace da3 {

struct model {
    std::string preset;      // "da3-small", ..., "da3mono-large", "da3metric-large" (gguf/schema.h)
    model_kind kind = model_kind::anyview;  // picks the graph builder (models/builder.h)
    std::string checkpoint;  // depthanything3.checkpoint_name
    vit_model vit;
    dpt_head head;
    bool has_cam_dec = false, has_cam_enc = false;
    camera_decoder cam_dec;
    camera_encoder cam_enc;
    bool metric_scaling = false;  // metric-large: depth * focal / 300
    // nested giant+metric pair: the metric-large branch (m_vit.*, m_head.*) that scales the
    // any-view prediction to metres (ref: da3.py NestedDepthAnything3Net)
    bool nested = false;
    vit_model m_vit;
    // what runs the ViT's linears (da3_model_info.linear_engine), set by prepare_model_for_cpu
    std::string linear_engine = "ggml";
    dpt_head m_head;
    float mean[3] = {0.485f, 0.456f, 0.406f};
    float std[3] = {0.229f, 0.224f, 0.225f};
};

// Reads every part of the network from `wm`; throws da3::error naming what is wrong.
void load_model(const weight_map &wm, model &m);
// A nested pair given as two files: the any-view model (vit.*, head.*, cam.*) and the metric
// model whose vit.*/head.* become the metric branch. Wrong kinds or order: DA3_ERR_FORMAT
// naming both files and the expected order (check_model_pair: that check alone, which only
// needs the files opened, see weight_map::open).
void check_model_pair(const weight_map &anyview, const weight_map &metric);
void load_model_pair(const weight_map &anyview, const weight_map &metric, model &m);
// After loading, for a model that runs on the CPU backend: weights repacked for our CPU kernels
// by n_threads threads (they are then only usable by CPU graphs); bf16: the ViT's f32/f16 linears
// for the bf16 GEMM (cpu_gemm_amx.h) where this CPU has an engine.
void prepare_model_for_cpu(model &m, int n_threads = 1, bool bf16 = false);

// One named float32 output in PyTorch (row-major) order.
struct host_tensor {
    std::vector<float> data;
    std::vector<int64_t> shape;
};

}  // namespace da3

struct da3_result {
    int n_views = 0, height = 0, width = 0;
    int is_metric = 0;
    std::vector<std::pair<std::string, da3::host_tensor>> outputs;
    std::vector<uint8_t> images;  // [n, h, w, 3]

    da3::host_tensor &add(const std::string &name, std::vector<int64_t> shape) {
        size_t n = 1;
        for (int64_t d : shape) n *= (size_t)d;
        outputs.push_back({name, {std::vector<float>(n), std::move(shape)}});
        return outputs.back().second;
    }
    const da3::host_tensor *find(const std::string &name) const {
        for (auto &kv : outputs)
            if (kv.first == name) return &kv.second;
        return nullptr;
    }
};

struct da3_context {
    da3_context_params params{};
    ggml_backend_t backend = nullptr;  // where the weights live and the graph runs
    ggml_backend_t cpu = nullptr;      // CPU fallback for ops the GPU backend lacks
    ggml_backend_sched_t sched = nullptr;
    size_t sched_size = 0;  // graph size sched was made for (reserve_graph)
    da3::weight_map wm;
    da3::weight_map m_wm;  // the metric file of a nested pair loaded from two files (da3_load_pair)
    da3::model model;
    std::mutex mu;  // serializes inference on this context
    std::atomic<long> busy_pid{0};  // process whose thread holds mu (api.cpp lock_context), else 0
    std::vector<uint8_t> graph_meta;  // ggml context memory for graph building
    void *compute_buf_advised = nullptr;  // compute buffer last given advise_huge_pages

    ~da3_context();
};

namespace da3 {
// params with defaults filled in (NULL: da3_context_default_params(); n_threads <= 0: physical cores);
// n_threads over ggml's limit: DA3_ERR_INVALID_ARGUMENT.
da3_context_params resolved_params(const da3_context_params *params);
// The CPU backend (params.n_threads threads) and the one the graph runs on (params.backend and
// .device; the CPU backend itself for DA3_BACKEND_CPU). On failure throws; what was opened stays
// in cpu/backend for the caller to free.
void open_backends(const da3_context_params &params, ggml_backend_t &cpu, ggml_backend_t &backend);
// Makes ctx->sched (re)created with room for the graph of an n_views call (only grows).
void reserve_graph(da3_context *ctx, int n_views);
// Runs the network on a normalized input [N, 3, H, W]; intrinsics (optional, with
// extrinsics) are at the processed resolution. Caller holds ctx->mu.
std::unique_ptr<da3_result> run_network(da3_context *ctx, const float *input, int n, int h, int w,
                                        const float *extrinsics, int ext_rows, const float *intrinsics,
                                        const da3_infer_params &p);
}  // namespace da3
