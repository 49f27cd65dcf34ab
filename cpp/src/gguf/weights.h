// GGUF file access: metadata getters and named weight lookup with shape checks.
// The file is parsed by ggml's gguf reader; tensors are placed in one backend buffer. The data of
// optional branches is read on first use (weight_group), so that they cost no resident memory
// until then: the CPU buffer's pages stay untouched.
// Loading is two passes over the same loaders (api.cpp load_context): a shape pass on the opened
// file (every name, shape and metadata check; marks the tensors the model uses, reads no data),
// then upload() allocates and reads only the used tensors, and the real pass builds the model.
#pragma once

#include "common.h"
#include "graph/graph.h"

#include "ggml.h"

#include <atomic>
#include <cfloat>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct gguf_context;
struct ggml_backend;
struct ggml_backend_buffer;

namespace da3 {

// Weights read at load (core) or on the first call that needs them.
enum class weight_group {
    core,
    cam_enc,  // camera encoder "cam_enc.*": only pose-conditioned calls (~21 % of da3-base f32)
    aux,      // aux ray head "*_aux*": only use_ray_pose / compute_aux
};
constexpr int kWeightGroups = 3;
weight_group weight_group_of(const std::string &tensor_name);

// Bytes of a string taken from the file, made safe for an error message (printable ASCII, else
// \xNN; capped).
std::string printable(const std::string &s);

// The type a tensor takes in memory, by its role (name): the transformer and camera matmul
// weights (the tensors convert.py quantizes) keep any supported stored type, as the matmuls
// take every one; every other tensor (norms, biases, layer scales, tokens, position embedding,
// convolutions) is used by element-wise ops or kernels that take f32 only and becomes f32.
ggml_type tensor_type_for_role(const std::string &tensor_name, ggml_type stored);

// Hint that host memory [base, base + size) be backed by transparent huge pages (Linux).
void advise_huge_pages(void *base, size_t size);

// Metadata and tensors of one loaded GGUF. Every error names the file and the problem.
class weight_map {
public:
    weight_map() = default;
    ~weight_map();
    weight_map(const weight_map &) = delete;
    weight_map &operator=(const weight_map &) = delete;

    // Parses `path` and uploads the core tensors into a buffer of `backend`. Throws da3::error.
    // = open() (header, metadata, tensor table checked against the file; tensors known by
    // name and shape, no data yet) + upload() (allocation of every tensor, data of the core
    // group; the file stays open for the other groups). Host buffers are filled by up to
    // n_threads threads, which the load-time weight transforms also use (load_threads()).
    // open() also fixes each tensor's in-memory type by its role (tensor_type_for_role): tensors
    // stored in another supported type are converted to f32 as they are read. upload() after a
    // shape pass allocates only the tensors that pass looked up; every value read is checked
    // finite (quantized types: their block scales), else DA3_ERR_FORMAT naming the tensor.
    void load(const std::string &path, ggml_backend *backend, int n_threads = 1);
    void open(const std::string &path);
    void upload(ggml_backend *backend, int n_threads = 1);
    // Whether upload() has run: the loaders skip their data edits in the shape pass before it.
    bool has_data() const { return buf_ != nullptr; }
    // Reads the data of group `g` unless done already (not thread-safe: callers serialize).
    // Throws DA3_ERR_FORMAT when the file can no longer be read.
    void ensure_loaded(weight_group g);

    const std::string &path() const { return path_; }

    // Tensors. get() throws DA3_ERR_MISSING_TENSOR when absent or when `ne` (ggml order,
    // -1 = any) does not match; find() returns nullptr when absent.
    ggml_tensor *get(const std::string &name, std::vector<int64_t> ne = {}) const;
    ggml_tensor *find(const std::string &name) const;
    bool has(const std::string &name) const { return find(name) != nullptr; }
    // All tensor names with this prefix (e.g. "cam_enc.").
    std::vector<std::string> names_with_prefix(const std::string &prefix) const;

    // Metadata under "depthanything3." + key. The *_or variants return `def` when absent;
    // the others throw DA3_ERR_FORMAT naming the key. Integer getters accept any integer type
    // (not bool) and check the value against [lo, hi] as int64 before any narrowing; float
    // getters accept f32, f64 or an integer and require a finite value in [lo, hi]; bool
    // getters accept bool or the integers 0 and 1.
    bool has_key(const std::string &key) const;
    int64_t get_int(const std::string &key, int64_t lo = INT32_MIN, int64_t hi = INT32_MAX) const;
    int64_t get_int_or(const std::string &key, int64_t def, int64_t lo = INT32_MIN, int64_t hi = INT32_MAX) const;
    float get_float(const std::string &key, float lo = -FLT_MAX, float hi = FLT_MAX) const;
    float get_float_or(const std::string &key, float def, float lo = -FLT_MAX, float hi = FLT_MAX) const;
    bool get_bool_or(const std::string &key, bool def) const;
    std::string get_str_or(const std::string &key, const std::string &def) const;
    std::vector<int64_t> get_int_array(const std::string &key) const;
    std::vector<float> get_float_array_or(const std::string &key, std::vector<float> def) const;
    std::string get_general_str_or(const std::string &full_key, const std::string &def) const;

    size_t weights_bytes() const { return weights_bytes_; }
    // Threads for load-time work on the weights in place: upload's n_threads for host buffers,
    // else 1 (device buffers are edited through ggml_backend_tensor_get/set, one at a time).
    int load_threads() const { return host() ? n_threads_ : 1; }
    // Bytes of tensor data read so far (core + groups loaded on demand).
    size_t weights_read_bytes() const { return read_bytes_.load(std::memory_order_relaxed); }
    // Name of the dominant quantized type of the ViT matmul weights ("f32", "f16", "q8_0", ...).
    std::string weight_type() const;

    [[noreturn]] void format_error(const std::string &what) const;

private:
    // Where a tensor's data lies in the file, and its type there.
    struct file_tensor {
        int64_t id;           // gguf tensor index
        ggml_type file_type;  // as stored (the tensor's own type may be f32, see open())
        size_t off, nbytes;   // absolute file offset and size of the stored data
    };
    int64_t key_id(const std::string &key) const;
    std::string key_name(const std::string &key) const;
    void keep_used_tensors();
    void read_tensors(const std::vector<std::string> &names);
    // Converts (when the types differ) the stored bytes `src` of `t` into `dst` (the tensor's
    // layout) and checks the values finite; throws DA3_ERR_FORMAT naming the tensor.
    void convert_and_check(const ggml_tensor *t, const file_tensor &ft, const void *src, void *dst) const;
    bool host() const;  // buf_ is in host memory

    std::string path_;
    gguf_context *gguf_ = nullptr;
    ggml_context *ctx_ = nullptr;
    ggml_backend_buffer *buf_ = nullptr;
    std::unordered_map<std::string, ggml_tensor *> tensors_;
    std::unordered_map<std::string, file_tensor> file_tensors_;
    mutable std::unordered_set<std::string> used_;  // names looked up by find()/get() (shape pass)
    size_t weights_bytes_ = 0;
    std::atomic<size_t> read_bytes_{0};  // read by model info while a call may load a group
    FILE *file_ = nullptr;                           // open while a group is pending
    int n_threads_ = 1;
    std::vector<std::string> pending_[kWeightGroups];  // tensors per group, not read yet
};

// Typed helpers used by the per-part loaders.
inline linear load_linear(const weight_map &wm, const std::string &prefix, bool bias = true) {
    linear l;
    l.w = wm.get(prefix + ".weight");
    l.b = bias ? wm.get(prefix + ".bias") : wm.find(prefix + ".bias");
    return l;
}

inline layer_norm load_norm(const weight_map &wm, const std::string &prefix) {
    return {wm.get(prefix + ".weight"), wm.get(prefix + ".bias")};
}

// Convolution weights [KW, KH, Cin, Cout]; bias optional unless `bias`.
inline conv2d load_conv(const weight_map &wm, const std::string &prefix, bool bias = true) {
    conv2d c;
    c.w = wm.get(prefix + ".weight");
    c.b = bias ? wm.get(prefix + ".bias") : wm.find(prefix + ".bias");
    return c;
}

}  // namespace da3
