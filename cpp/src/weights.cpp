#include "weights.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace da3 {

static const char *kPrefix = "depthanything3.";

// Bytes of a string taken from the file, made safe for an error message: printable ASCII
// kept, anything else as \xNN (invalid UTF-8 would break the Python exception), capped.
static std::string printable(const std::string &s) {
    static const char *hex = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < s.size() && out.size() < 96; ++i) {
        const unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out += (char)c;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

namespace {

// Structural check of the GGUF header, metadata and tensor table against the file size,
// run before ggml's reader, which crashes on some corrupt inputs (SIGFPE on a zero
// dimension in ggml 0.15). ref: ggml/src/gguf.cpp (gguf_init_from_file_impl) for the layout.
class gguf_prescan {
public:
    gguf_prescan(FILE *f, uint64_t size) : f_(f), size_(size) {}

    // "" when the structure is sound, else what is wrong.
    std::string run() {
        uint32_t magic = 0, version = 0;
        uint64_t n_tensors = 0, n_kv = 0;
        if (!rd(magic) || !rd(version) || !rd(n_tensors) || !rd(n_kv)) return "truncated GGUF header";
        if (version < 2 || version > 3) return "unsupported GGUF version " + std::to_string(version);
        // the smallest metadata entry takes 13 bytes, the smallest tensor info 29
        if (n_kv > size_ / 13) return "corrupt header: " + std::to_string(n_kv) + " metadata entries cannot fit in the file";
        if (n_tensors > size_ / 29) return "corrupt header: " + std::to_string(n_tensors) + " tensors cannot fit in the file";
        if (n_tensors == 0) return "the file contains no tensors";
        for (uint64_t i = 0; i < n_kv; ++i) {
            std::string key;
            uint32_t type = 0;
            if (!rd_str(key)) return "truncated or corrupt metadata (key of entry " + std::to_string(i) + ")";
            const std::string what = "metadata entry '" + printable(key) + "'";
            if (!rd(type)) return "truncated " + what;
            if (type == kArray) {
                uint32_t at = 0;
                uint64_t n = 0;
                if (!rd(at) || !rd(n)) return "truncated " + what;
                if (at == kString) {
                    if (n > remaining() / 8) return "truncated or corrupt " + what;
                    for (uint64_t j = 0; j < n; ++j) {
                        if (!skip_str()) return "truncated or corrupt " + what;
                    }
                } else if (elem_size(at) == 0) {
                    return what + " is an array of invalid type " + std::to_string(at);
                } else if (n > remaining() / elem_size(at) || !skip(n * elem_size(at))) {
                    return "truncated or corrupt " + what;
                }
            } else if (type == kString) {
                if (!skip_str()) return "truncated or corrupt " + what;
            } else if (elem_size(type) == 0) {
                return what + " has invalid type " + std::to_string(type);
            } else if (!skip(elem_size(type))) {
                return "truncated " + what;
            }
        }
        for (uint64_t i = 0; i < n_tensors; ++i) {
            std::string name;
            uint32_t n_dims = 0, type = 0;
            uint64_t offset = 0;
            if (!rd_str(name)) return "truncated or corrupt tensor table (name of tensor " + std::to_string(i) + ")";
            const std::string what = "tensor table: tensor '" + printable(name) + "'";
            if (name.size() >= GGML_MAX_NAME) return what + ": name too long";
            if (!rd(n_dims)) return "truncated " + what;
            if (n_dims < 1 || n_dims > GGML_MAX_DIMS) return what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)";
            uint64_t nel = 1;
            for (uint32_t j = 0; j < n_dims; ++j) {
                uint64_t ne = 0;
                if (!rd(ne)) return "truncated " + what;
                // at most 2 elements per byte of file (4-bit types)
                if (ne == 0 || ne > 2 * size_) return what + " has invalid dimension " + std::to_string(ne);
                nel *= ne;
                if (nel > 2 * size_) return what + " is larger than the file";
            }
            if (!rd(type) || !rd(offset)) return "truncated " + what;
            if (type >= GGML_TYPE_COUNT || ggml_type_size((ggml_type)type) == 0) return what + " has invalid type " + std::to_string(type);
            if (offset > size_) return what + " has a data offset past the end of the file";
        }
        return "";
    }

private:
    static constexpr uint32_t kString = 8, kArray = 9;  // gguf_type values
    static uint64_t elem_size(uint32_t t) {
        switch (t) {
            case 0: case 1: case 7: return 1;      // u8 i8 bool
            case 2: case 3: return 2;              // u16 i16
            case 4: case 5: case 6: return 4;      // u32 i32 f32
            case 10: case 11: case 12: return 8;   // u64 i64 f64
            default: return 0;
        }
    }
    uint64_t remaining() const { return size_ - pos_; }
    template <typename T> bool rd(T &v) {
        if (remaining() < sizeof(T) || std::fread(&v, sizeof(T), 1, f_) != 1) return false;
        pos_ += sizeof(T);
        return true;
    }
    bool skip(uint64_t n) {
        if (n > remaining() || fseeko(f_, (off_t)n, SEEK_CUR) != 0) return false;
        pos_ += n;
        return true;
    }
    bool skip_str() {
        uint64_t n = 0;
        return rd(n) && skip(n);
    }
    bool rd_str(std::string &s) {
        uint64_t n = 0;
        if (!rd(n) || n > remaining() || n > 65536) return false;
        s.resize(n);
        if (n && std::fread(&s[0], 1, n, f_) != n) return false;
        pos_ += n;
        return true;
    }

    FILE *f_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

}  // namespace

void advise_huge_pages(void *base, size_t size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // whole 2 MB pages inside [base, base + size): fewer page faults while the data is read, fewer
    // TLB misses while the GEMMs stream it (a hint: ignored where transparent huge pages are off)
    const uintptr_t huge = (uintptr_t)2 << 20;
    const uintptr_t b = ((uintptr_t)base + huge - 1) & ~(huge - 1), e = ((uintptr_t)base + size) & ~(huge - 1);
    if (e > b) madvise((void *)b, e - b, MADV_HUGEPAGE);
#else
    (void)base, (void)size;
#endif
}

weight_group weight_group_of(const std::string &name) {
    if (name.rfind("cam_enc.", 0) == 0) return weight_group::cam_enc;
    if (name.find("_aux") != std::string::npos) return weight_group::aux;
    return weight_group::core;
}

weight_map::~weight_map() {
    if (file_) std::fclose(file_);
    if (buf_) ggml_backend_buffer_free(buf_);
    if (ctx_) ggml_free(ctx_);
    if (gguf_) gguf_free(gguf_);
}

void weight_map::format_error(const std::string &what) const {
    fail(DA3_ERR_FORMAT, path_ + ": " + what);
}

void weight_map::load(const std::string &path, ggml_backend *backend, int n_threads) {
    open(path);
    upload(backend, n_threads);
}

void weight_map::open(const std::string &path) {
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
        if (n != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
            std::fclose(f);
            format_error("not a GGUF file (bad magic)");
        }
        std::rewind(f);
        const std::string problem = gguf_prescan(f, (uint64_t)st.st_size).run();
        std::fclose(f);
        if (!problem.empty()) format_error(problem);
    }

    gguf_init_params ip = {/*no_alloc =*/true, /*ctx =*/&ctx_};
    gguf_ = gguf_init_from_file(path.c_str(), ip);
    if (!gguf_ || !ctx_) {
        format_error("GGUF header, metadata or tensor table is corrupt or truncated");
    }
    std::string arch = get_general_str_or("general.architecture", "");
    if (arch != "depthanything3") {
        format_error("wrong architecture '" + printable(arch) + "' (expected 'depthanything3')");
    }

    const size_t data_off = gguf_get_data_offset(gguf_);
    const int64_t n_tensors = gguf_get_n_tensors(gguf_);
    for (int64_t i = 0; i < n_tensors; ++i) {
        const char *name = gguf_get_tensor_name(gguf_, i);
        ggml_tensor *t = ggml_get_tensor(ctx_, name);
        if (!t) format_error("tensor table entry '" + printable(name) + "' has no tensor");
        switch (t->type) {
            case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: case GGML_TYPE_Q8_0:
            case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
            case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
                break;
            default:
                fail(DA3_ERR_UNSUPPORTED, path_ + ": tensor '" + printable(name) + "' has unsupported type " +
                                              ggml_type_name(t->type));
        }
        const size_t off = data_off + gguf_get_tensor_offset(gguf_, i);
        const size_t nbytes = ggml_nbytes(t);
        if (off > (size_t)st.st_size || nbytes > (size_t)st.st_size - off) {
            format_error("truncated: data of tensor '" + printable(name) + "' runs past the end of the file");
        }
        tensors_[name] = t;
    }
}

bool weight_map::host() const { return buf_ && ggml_backend_buffer_is_host(buf_); }

void weight_map::upload(ggml_backend *backend, int n_threads) {
    if (!gguf_ || buf_) fail(DA3_ERR_INTERNAL, path_ + ": weight_map::upload without open, or twice");
    buf_ = ggml_backend_alloc_ctx_tensors(ctx_, backend);
    if (!buf_) {
        fail(DA3_ERR_OUT_OF_MEMORY, path_ + ": cannot allocate the weight buffer");
    }
    ggml_backend_buffer_set_usage(buf_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    weights_bytes_ = ggml_backend_buffer_get_size(buf_);
    n_threads_ = std::max(1, n_threads);
    if (host()) advise_huge_pages(ggml_backend_buffer_get_base(buf_), weights_bytes_);

    file_ = std::fopen(path_.c_str(), "rb");
    if (!file_) fail(DA3_ERR_IO, path_ + ": cannot open for reading");
    const int64_t n_tensors = gguf_get_n_tensors(gguf_);
    for (int64_t i = 0; i < n_tensors; ++i) {
        pending_[(int)weight_group_of(gguf_get_tensor_name(gguf_, i))].push_back(i);
    }
    ensure_loaded(weight_group::core);
}

void weight_map::ensure_loaded(weight_group g) {
    std::vector<int64_t> &ids = pending_[(int)g];
    if (ids.empty()) return;
    if (!file_) fail(DA3_ERR_INTERNAL, path_ + ": weight_map::ensure_loaded before upload");
    read_tensors(ids);
    ids.clear();
    bool done = true;
    for (auto &p : pending_) done = done && p.empty();
    if (done) {
        std::fclose(file_);
        file_ = nullptr;
    }
}

void weight_map::read_tensors(const std::vector<int64_t> &ids) {
    const size_t data_off = gguf_get_data_offset(gguf_);
    auto tensor = [&](int64_t i) { return find(gguf_get_tensor_name(gguf_, i)); };
    auto truncated = [&](const ggml_tensor *t) {
        format_error(std::string("truncated: cannot read data of tensor '") + ggml_get_name(t) + "'");
    };
    if (!host()) {  // through a staging copy, one tensor at a time
        std::vector<uint8_t> staging;
        for (int64_t i : ids) {
            ggml_tensor *t = tensor(i);
            const size_t nbytes = ggml_nbytes(t);
            staging.resize(nbytes);
            if (fseeko(file_, (off_t)(data_off + gguf_get_tensor_offset(gguf_, i)), SEEK_SET) != 0 ||
                std::fread(staging.data(), 1, nbytes, file_) != nbytes) {
                truncated(t);
            }
            ggml_backend_tensor_set(t, staging.data(), 0, nbytes);
            read_bytes_ += nbytes;
        }
        return;
    }
    // host memory: straight into the tensors, by n_threads_ threads (positional reads, the
    // largest tensors first, each to the least loaded thread): the copies out of the page cache
    // and the first touch of the buffer's pages run in parallel
    struct item {
        ggml_tensor *t;
        size_t off, nbytes;
    };
    std::vector<item> items;
    for (int64_t i : ids) {
        ggml_tensor *t = tensor(i);
        items.push_back({t, data_off + gguf_get_tensor_offset(gguf_, i), ggml_nbytes(t)});
    }
    std::sort(items.begin(), items.end(), [](const item &a, const item &b) { return a.nbytes > b.nbytes; });
    const int nt = std::max(1, std::min<int>(n_threads_, (int)items.size()));
    std::vector<std::vector<item>> parts(nt);
    std::vector<size_t> bytes(nt, 0);
    for (const item &it : items) {
        const int t = (int)(std::min_element(bytes.begin(), bytes.end()) - bytes.begin());
        parts[t].push_back(it);
        bytes[t] += it.nbytes;
    }
    const int fd = fileno(file_);
    parallel_for(nt, nt, [&](int t) {
        for (const item &it : parts[t]) {
            for (size_t done = 0; done < it.nbytes;) {
                const ssize_t r = pread(fd, (char *)it.t->data + done, it.nbytes - done, (off_t)(it.off + done));
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) truncated(it.t);
                done += (size_t)r;
            }
            read_bytes_ += it.nbytes;
        }
    });
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
