// One graph of one inference call: its ggml context, inputs, outputs, scheduling and timing.
#pragma once

#include "models/model.h"

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace da3 {

struct graph_run {
    da3_context *ctx;
    graph_ctx g;
    ggml_context *gctx = nullptr;

    // A graph with room for an n_views call; p.taps are the intermediates to keep.
    graph_run(da3_context *c, const da3_infer_params &p, int n_views);
    ~graph_run();
    graph_run(const graph_run &) = delete;
    graph_run &operator=(const graph_run &) = delete;

    // Marks t an output of the graph.
    void output(ggml_tensor *t);
    // Allocates, uploads the inputs and runs the graph; throws da3::error.
    void compute();
    // The f32 data of an output.
    static std::vector<float> read(ggml_tensor *t);

    // Per-stage wall time when profiling: nodes are attributed to the stage of the latest
    // node whose name starts with "vit.", "head." or "cam." (or "m." + those).
    struct profile_state {
        double stage_s[3] = {0, 0, 0};
        int stage = 0;
        std::map<std::string, double> op_s;  // "<stage>.<OP>" -> seconds
        bool print_nodes = false;            // DA3CPP_PROFILE_NODES set: one line per node on stderr
        std::chrono::steady_clock::time_point last;
    } prof;
    bool profiling = false;

private:
    static bool eval_cb(ggml_tensor *t, bool ask, void *user);
};

}  // namespace da3
