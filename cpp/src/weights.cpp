#include "weights.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "gguf.h"

#include <cstdio>
#include <map>
#include <sys/stat.h>

namespace da3 {

static const char *kPrefix = "depthanything3.";

weight_map::~weight_map() {
    if (buf_) ggml_backend_buffer_free(buf_);
    if (ctx_) ggml_free(ctx_);
    if (gguf_) gguf_free(gguf_);
}

void weight_map::format_error(const std::string &what) const {
    fail(DA3_ERR_FORMAT, path_ + ": " + what);
}

void weight_map::load(const std::string &path, ggml_backend *backend) {
    path_ = path;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        fail(DA3_ERR_IO, path + ": no such file");
    }
    if (!S_ISREG(st.st_mode)) {
        fail(DA3_ERR_IO, path + ": not a regular file");
    }
    if (st.st_size < 8) {
        format_error("file is empty or too small to be a GGUF (" + std::to_string(st.st_size) + " bytes)");
    }
    {
        FILE *f = std::fopen(path.c_str(), "rb");
        if (!f) fail(DA3_ERR_IO, path + ": cannot open for reading");
        char magic[4] = {0, 0, 0, 0};
        size_t n = std::fread(magic, 1, 4, f);
        std::fclose(f);
        if (n != 4 || std::string(magic, 4) != "GGUF") {
            format_error("not a GGUF file (bad magic)");
        }
    }

    gguf_init_params ip = {/*no_alloc =*/true, /*ctx =*/&ctx_};
    gguf_ = gguf_init_from_file(path.c_str(), ip);
    if (!gguf_ || !ctx_) {
        format_error("GGUF header, metadata or tensor table is corrupt or truncated");
    }
    std::string arch = get_general_str_or("general.architecture", "");
    if (arch != "depthanything3") {
        format_error("wrong architecture '" + arch + "' (expected 'depthanything3')");
    }

    const size_t data_off = gguf_get_data_offset(gguf_);
    const int64_t n_tensors = gguf_get_n_tensors(gguf_);
    for (int64_t i = 0; i < n_tensors; ++i) {
        const char *name = gguf_get_tensor_name(gguf_, i);
        ggml_tensor *t = ggml_get_tensor(ctx_, name);
        if (!t) format_error(std::string("tensor table entry '") + name + "' has no tensor");
        switch (t->type) {
            case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: case GGML_TYPE_Q8_0:
            case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
            case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
                break;
            default:
                fail(DA3_ERR_UNSUPPORTED, path_ + ": tensor '" + name + "' has unsupported type " +
                                              ggml_type_name(t->type));
        }
        const size_t off = data_off + gguf_get_tensor_offset(gguf_, i);
        const size_t nbytes = ggml_nbytes(t);
        if (off > (size_t)st.st_size || nbytes > (size_t)st.st_size - off) {
            format_error(std::string("truncated: data of tensor '") + name + "' runs past the end of the file");
        }
        tensors_[name] = t;
    }

    buf_ = ggml_backend_alloc_ctx_tensors(ctx_, backend);
    if (!buf_) {
        fail(DA3_ERR_OUT_OF_MEMORY, path_ + ": cannot allocate the weight buffer");
    }
    ggml_backend_buffer_set_usage(buf_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    weights_bytes_ = ggml_backend_buffer_get_size(buf_);

    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) fail(DA3_ERR_IO, path + ": cannot open for reading");
    std::vector<uint8_t> staging;
    const bool host = ggml_backend_buffer_is_host(buf_);
    for (int64_t i = 0; i < n_tensors; ++i) {
        ggml_tensor *t = ggml_get_tensor(ctx_, gguf_get_tensor_name(gguf_, i));
        const size_t off = data_off + gguf_get_tensor_offset(gguf_, i);
        const size_t nbytes = ggml_nbytes(t);
        void *dst = t->data;
        if (!host) {
            staging.resize(nbytes);
            dst = staging.data();
        }
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || std::fread(dst, 1, nbytes, f) != nbytes) {
            std::fclose(f);
            format_error(std::string("truncated: cannot read data of tensor '") + ggml_get_name(t) + "'");
        }
        if (!host) ggml_backend_tensor_set(t, staging.data(), 0, nbytes);
    }
    std::fclose(f);
}

ggml_tensor *weight_map::find(const std::string &name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : it->second;
}

ggml_tensor *weight_map::get(const std::string &name, std::vector<int64_t> ne) const {
    ggml_tensor *t = find(name);
    if (!t) {
        fail(DA3_ERR_MISSING_TENSOR, path_ + ": missing tensor '" + name + "'");
    }
    if (!ne.empty()) {
        bool ok = ne.size() <= 4;
        for (size_t i = 0; ok && i < 4; ++i) {
            int64_t want = i < ne.size() ? ne[i] : 1;
            if (want >= 0 && t->ne[i] != want) ok = false;
        }
        if (!ok) {
            std::string got, exp;
            for (int i = 0; i < 4; ++i) got += (i ? "," : "") + std::to_string(t->ne[i]);
            for (size_t i = 0; i < ne.size(); ++i) exp += (i ? "," : "") + std::to_string(ne[i]);
            fail(DA3_ERR_MISSING_TENSOR,
                 path_ + ": tensor '" + name + "' has shape [" + got + "], expected [" + exp + "]");
        }
    }
    return t;
}

std::vector<std::string> weight_map::names_with_prefix(const std::string &prefix) const {
    std::vector<std::string> out;
    for (auto &kv : tensors_) {
        if (kv.first.compare(0, prefix.size(), prefix) == 0) out.push_back(kv.first);
    }
    return out;
}

int64_t weight_map::key_id(const std::string &key) const { return gguf_find_key(gguf_, (kPrefix + key).c_str()); }

bool weight_map::has_key(const std::string &key) const { return key_id(key) >= 0; }

static bool read_int(const gguf_context *g, int64_t id, int64_t &out) {
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_UINT8: out = gguf_get_val_u8(g, id); return true;
        case GGUF_TYPE_INT8: out = gguf_get_val_i8(g, id); return true;
        case GGUF_TYPE_UINT16: out = gguf_get_val_u16(g, id); return true;
        case GGUF_TYPE_INT16: out = gguf_get_val_i16(g, id); return true;
        case GGUF_TYPE_UINT32: out = gguf_get_val_u32(g, id); return true;
        case GGUF_TYPE_INT32: out = gguf_get_val_i32(g, id); return true;
        case GGUF_TYPE_UINT64: out = (int64_t)gguf_get_val_u64(g, id); return true;
        case GGUF_TYPE_INT64: out = gguf_get_val_i64(g, id); return true;
        case GGUF_TYPE_BOOL: out = gguf_get_val_bool(g, id); return true;
        default: return false;
    }
}

int64_t weight_map::get_int(const std::string &key) const {
    int64_t id = key_id(key), v = 0;
    if (id < 0) format_error("missing metadata key '" + std::string(kPrefix) + key + "'");
    if (!read_int(gguf_, id, v)) format_error("metadata key '" + std::string(kPrefix) + key + "' is not an integer");
    return v;
}

int64_t weight_map::get_int_or(const std::string &key, int64_t def) const {
    return has_key(key) ? get_int(key) : def;
}

float weight_map::get_float(const std::string &key) const {
    int64_t id = key_id(key);
    if (id < 0) format_error("missing metadata key '" + std::string(kPrefix) + key + "'");
    switch (gguf_get_kv_type(gguf_, id)) {
        case GGUF_TYPE_FLOAT32: return gguf_get_val_f32(gguf_, id);
        case GGUF_TYPE_FLOAT64: return (float)gguf_get_val_f64(gguf_, id);
        default: {
            int64_t v;
            if (read_int(gguf_, id, v)) return (float)v;
            format_error("metadata key '" + std::string(kPrefix) + key + "' is not a number");
        }
    }
}

float weight_map::get_float_or(const std::string &key, float def) const { return has_key(key) ? get_float(key) : def; }

bool weight_map::get_bool_or(const std::string &key, bool def) const {
    return has_key(key) ? get_int(key) != 0 : def;
}

std::string weight_map::get_str_or(const std::string &key, const std::string &def) const {
    int64_t id = key_id(key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_STRING) format_error("metadata key '" + std::string(kPrefix) + key + "' is not a string");
    return gguf_get_val_str(gguf_, id);
}

std::string weight_map::get_general_str_or(const std::string &full_key, const std::string &def) const {
    int64_t id = gguf_find_key(gguf_, full_key.c_str());
    if (id < 0 || gguf_get_kv_type(gguf_, id) != GGUF_TYPE_STRING) return def;
    return gguf_get_val_str(gguf_, id);
}

std::vector<int64_t> weight_map::get_int_array(const std::string &key) const {
    int64_t id = key_id(key);
    if (id < 0) format_error("missing metadata key '" + std::string(kPrefix) + key + "'");
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_ARRAY) format_error("metadata key '" + std::string(kPrefix) + key + "' is not an array");
    const size_t n = gguf_get_arr_n(gguf_, id);
    const void *d = gguf_get_arr_data(gguf_, id);
    std::vector<int64_t> out(n);
    switch (gguf_get_arr_type(gguf_, id)) {
        case GGUF_TYPE_INT32: for (size_t i = 0; i < n; ++i) out[i] = ((const int32_t *)d)[i]; break;
        case GGUF_TYPE_UINT32: for (size_t i = 0; i < n; ++i) out[i] = ((const uint32_t *)d)[i]; break;
        case GGUF_TYPE_INT64: for (size_t i = 0; i < n; ++i) out[i] = ((const int64_t *)d)[i]; break;
        case GGUF_TYPE_UINT64: for (size_t i = 0; i < n; ++i) out[i] = (int64_t)((const uint64_t *)d)[i]; break;
        default: format_error("metadata key '" + std::string(kPrefix) + key + "' is not an integer array");
    }
    return out;
}

std::vector<float> weight_map::get_float_array_or(const std::string &key, std::vector<float> def) const {
    int64_t id = key_id(key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_ARRAY || gguf_get_arr_type(gguf_, id) != GGUF_TYPE_FLOAT32) {
        format_error("metadata key '" + std::string(kPrefix) + key + "' is not a float array");
    }
    const size_t n = gguf_get_arr_n(gguf_, id);
    const float *d = (const float *)gguf_get_arr_data(gguf_, id);
    return std::vector<float>(d, d + n);
}

std::string weight_map::weight_type() const {
    std::map<std::string, int> count;
    for (auto &kv : tensors_) {
        if (kv.first.rfind("vit.blk.", 0) == 0 && kv.first.size() > 7 &&
            kv.first.compare(kv.first.size() - 7, 7, ".weight") == 0 && ggml_n_dims(kv.second) == 2) {
            count[ggml_type_name(kv.second->type)]++;
        }
    }
    if (count.empty()) return "unknown";
    if (count.size() > 1) return "mixed";
    return count.begin()->first;
}

}  // namespace da3
