#include "gguf/weights.h"
#include "gguf/gguf_prescan.h"
#include "gguf/schema.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace da3 {

// Bytes of a string taken from the file, made safe for an error message: printable ASCII
// kept, anything else as \xNN (invalid UTF-8 would break the Python exception), capped.
std::string printable(const std::string &s) {
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

static bool ends_with(const std::string &s, const char *suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

ggml_type tensor_type_for_role(const std::string &name, ggml_type stored) {
    // the quantized set of convert.py (QUANTIZED_TENSORS): every stored type is taken as it is
    namespace tn = schema::tn;
    const std::string n = name.rfind(schema::kMetricVit, 0) == 0 ? std::string(schema::kVit) + name.substr(std::strlen(schema::kMetricVit)) : name;
    const auto ends_with_part = [&](const char *part) { return ends_with(n, ("." + std::string(part) + ".weight").c_str()); };
    bool matmul = false;
    if (n.rfind(std::string(schema::kVit) + tn::kBlock + ".", 0) == 0) {
        for (const char *s : {tn::kAttnQkv, tn::kAttnProj, tn::kMlpFc1, tn::kMlpFc2, tn::kMlpW12, tn::kMlpW3}) {
            matmul = matmul || ends_with_part(s);
        }
    } else if (n.rfind(std::string(schema::kCamEnc) + tn::kEncTrunk + ".", 0) == 0) {
        for (const char *s : {tn::kEncQkv, tn::kEncProj, tn::kEncFc1, tn::kEncFc2}) {
            matmul = matmul || ends_with_part(s);
        }
    } else {
        for (const char *s : {tn::kCamBb0, tn::kCamBb2, tn::kCamFcT, tn::kCamFcQ, tn::kCamFcFov}) {
            matmul = matmul || n == std::string(schema::kCamDec) + s + ".weight";
        }
    }
    return matmul ? stored : GGML_TYPE_F32;
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
        fail_io(path + ": no such file", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        fail(DA3_ERR_IO, path + ": not a regular file");
    }
    if (st.st_size < 8) {
        format_error("file is empty or too small to be a GGUF (" + std::to_string(st.st_size) + " bytes)");
    }
    {
        FILE *f = std::fopen(path.c_str(), "rb");
        if (!f) fail_io(path + ": cannot open for reading", errno);
        char magic[4] = {0, 0, 0, 0};
        size_t n = std::fread(magic, 1, 4, f);
        if (n != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
            std::fclose(f);
            format_error("not a GGUF file (bad magic)");
        }
        std::rewind(f);
        const std::string problem = gguf_prescan_file(f, (uint64_t)st.st_size);
        std::fclose(f);
        if (!problem.empty()) format_error(problem);
    }

    gguf_init_params ip = {/*no_alloc =*/true, /*ctx =*/&ctx_};
    gguf_ = gguf_init_from_file(path.c_str(), ip);
    if (!gguf_ || !ctx_) {
        format_error("GGUF header, metadata or tensor table is corrupt or truncated");
    }
    std::string arch = get_general_str_or("general.architecture", "");
    if (arch != schema::kArch) {
        format_error("wrong architecture '" + printable(arch) + "' (expected '" + schema::kArch + "')");
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
        file_tensors_[name] = {i, t->type, off, nbytes};
        const ggml_type mem_type = tensor_type_for_role(name, t->type);
        if (mem_type != t->type) {  // converted as it is read (no data yet: only the layout changes)
            t->type = mem_type;
            t->nb[0] = ggml_type_size(mem_type);
            t->nb[1] = t->nb[0] * (t->ne[0] / ggml_blck_size(mem_type));
            for (int j = 2; j < GGML_MAX_DIMS; ++j) t->nb[j] = t->nb[j - 1] * t->ne[j - 1];
        }
        tensors_[name] = t;
    }
}

bool weight_map::host() const { return buf_ && ggml_backend_buffer_is_host(buf_); }

// After a shape pass: a context holding only the tensors that pass looked up, so that the
// others are neither allocated nor read.
void weight_map::keep_used_tensors() {
    if (used_.empty()) return;  // no shape pass: keep every tensor
    ggml_init_params p = {/*mem_size =*/used_.size() * ggml_tensor_overhead(), /*mem_buffer =*/nullptr, /*no_alloc =*/true};
    ggml_context *used_ctx = ggml_init(p);
    if (!used_ctx) fail(DA3_ERR_OUT_OF_MEMORY, path_ + ": cannot allocate the tensor table");
    std::unordered_map<std::string, ggml_tensor *> kept;
    const int64_t n_tensors = gguf_get_n_tensors(gguf_);
    for (int64_t i = 0; i < n_tensors; ++i) {  // file order
        const std::string name = gguf_get_tensor_name(gguf_, i);
        if (!used_.count(name)) continue;
        const ggml_tensor *t = tensors_.at(name);
        ggml_tensor *u = ggml_new_tensor(used_ctx, t->type, GGML_MAX_DIMS, t->ne);
        ggml_set_name(u, name.c_str());
        kept[name] = u;
    }
    ggml_free(ctx_);
    ctx_ = used_ctx;
    tensors_ = std::move(kept);
}

void weight_map::upload(ggml_backend *backend, int n_threads) {
    if (!gguf_ || buf_) fail(DA3_ERR_INTERNAL, path_ + ": weight_map::upload without open, or twice");
    keep_used_tensors();
    buf_ = ggml_backend_alloc_ctx_tensors(ctx_, backend);
    if (!buf_) {
        fail(DA3_ERR_OUT_OF_MEMORY, path_ + ": cannot allocate the weight buffer");
    }
    ggml_backend_buffer_set_usage(buf_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    weights_bytes_ = ggml_backend_buffer_get_size(buf_);
    n_threads_ = std::max(1, n_threads);
    if (host()) advise_huge_pages(ggml_backend_buffer_get_base(buf_), weights_bytes_);

    file_ = std::fopen(path_.c_str(), "rb");
    if (!file_) fail_io(path_ + ": cannot open for reading", errno);
    const int64_t n_tensors = gguf_get_n_tensors(gguf_);
    for (int64_t i = 0; i < n_tensors; ++i) {
        const std::string name = gguf_get_tensor_name(gguf_, i);
        if (tensors_.count(name)) pending_[(int)weight_group_of(name)].push_back(name);
    }
    ensure_loaded(weight_group::core);
}

void weight_map::ensure_loaded(weight_group g) {
    std::vector<std::string> &names = pending_[(int)g];
    if (names.empty()) return;
    if (!file_) fail(DA3_ERR_INTERNAL, path_ + ": weight_map::ensure_loaded before upload");
    read_tensors(names);
    names.clear();
    bool done = true;
    for (auto &p : pending_) done = done && p.empty();
    if (done) {
        std::fclose(file_);
        file_ = nullptr;
    }
}

namespace {

// Index of the first non-finite value of n elements of type `type` (quantized types: of the
// first block with a non-finite f16 scale), or -1.
int64_t first_non_finite(ggml_type type, const void *data, int64_t n) {
    auto scan = [&](auto bits, auto mask) -> int64_t {
        using T = decltype(bits);
        const T *p = (const T *)data;
        for (int64_t i0 = 0; i0 < n; i0 += 4096) {  // branch-free (vectorized) per chunk
            const int64_t i1 = std::min<int64_t>(n, i0 + 4096);
            bool bad = false;
            for (int64_t i = i0; i < i1; ++i) bad |= (T)(p[i] & mask) == mask;
            if (bad) {
                for (int64_t i = i0; i < i1; ++i)
                    if ((T)(p[i] & mask) == mask) return i;
            }
        }
        return -1;
    };
    switch (type) {
        case GGML_TYPE_F32: return scan(uint32_t(0), uint32_t(0x7f800000));
        case GGML_TYPE_F16: return scan(uint16_t(0), uint16_t(0x7c00));
        case GGML_TYPE_BF16: return scan(uint16_t(0), uint16_t(0x7f80));
        default: break;
    }
    // f16 scales per block, at these byte offsets. ref: ggml/src/ggml-common.h (block_*)
    std::vector<size_t> scales;
    switch (type) {
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_Q8_0: scales = {0}; break;     // d
        case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
            scales = {0, 2}; break;                                                              // d, m / dmin
        case GGML_TYPE_Q6_K: scales = {ggml_type_size(type) - 2}; break;                         // d, last
        default: return -1;
    }
    const size_t bs = ggml_type_size(type);
    const int64_t nb = n / ggml_blck_size(type);
    for (int64_t b = 0; b < nb; ++b) {
        for (size_t off : scales) {
            uint16_t h;
            std::memcpy(&h, (const char *)data + (size_t)b * bs + off, 2);
            if ((h & 0x7c00) == 0x7c00) return b;
        }
    }
    return -1;
}

}  // namespace

void weight_map::convert_and_check(const ggml_tensor *t, const file_tensor &ft, const void *src, void *dst) const {
    const int64_t n = ggml_nelements(t);
    ggml_type checked = ft.file_type;
    if (ft.file_type != t->type) {  // to f32 (tensor_type_for_role)
        ggml_get_type_traits(ft.file_type)->to_float(src, (float *)dst, n);
        src = dst;
        checked = t->type;
    }
    const int64_t i = first_non_finite(checked, src, n);
    if (i >= 0) {
        const bool block = ggml_is_quantized(checked);
        format_error("tensor '" + std::string(ggml_get_name(t)) + "' (" + ggml_type_name(ft.file_type) +
                     ") has a non-finite value (NaN or inf) " + (block ? "as the scale of block " : "at element ") +
                     std::to_string(i));
    }
}

void weight_map::read_tensors(const std::vector<std::string> &names) {
    auto truncated = [&](const ggml_tensor *t) {
        format_error(std::string("truncated: cannot read data of tensor '") + ggml_get_name(t) + "'");
    };
    if (!host()) {  // through a staging copy, one tensor at a time
        std::vector<uint8_t> staging, converted;
        for (const std::string &name : names) {
            ggml_tensor *t = find(name);
            const file_tensor &ft = file_tensors_.at(name);
            staging.resize(ft.nbytes);
            if (fseeko(file_, (off_t)ft.off, SEEK_SET) != 0 || std::fread(staging.data(), 1, ft.nbytes, file_) != ft.nbytes) {
                truncated(t);
            }
            void *dst = staging.data();
            if (ft.file_type != t->type) {
                converted.resize(ggml_nbytes(t));
                dst = converted.data();
            }
            convert_and_check(t, ft, staging.data(), dst);
            ggml_backend_tensor_set(t, dst, 0, ggml_nbytes(t));
            read_bytes_ += ft.nbytes;
        }
        return;
    }
    // host memory: straight into the tensors, by n_threads_ threads (positional reads, the
    // largest tensors first, each to the least loaded thread): the copies out of the page cache
    // and the first touch of the buffer's pages run in parallel. Tensors converted on the way
    // (another stored type) go through a staging copy.
    struct item {
        ggml_tensor *t;
        const file_tensor *ft;
    };
    std::vector<item> items;
    for (const std::string &name : names) items.push_back({find(name), &file_tensors_.at(name)});
    std::sort(items.begin(), items.end(), [](const item &a, const item &b) { return a.ft->nbytes > b.ft->nbytes; });
    const int nt = std::max(1, std::min<int>(n_threads_, (int)items.size()));
    std::vector<std::vector<item>> parts(nt);
    std::vector<size_t> bytes(nt, 0);
    for (const item &it : items) {
        const int t = (int)(std::min_element(bytes.begin(), bytes.end()) - bytes.begin());
        parts[t].push_back(it);
        bytes[t] += it.ft->nbytes;
    }
    const int fd = fileno(file_);
    parallel_for(nt, nt, [&](int t) {
        std::vector<uint8_t> staging;
        for (const item &it : parts[t]) {
            const bool convert = it.ft->file_type != it.t->type;
            if (convert) staging.resize(it.ft->nbytes);
            char *dst = convert ? (char *)staging.data() : (char *)it.t->data;
            for (size_t done = 0; done < it.ft->nbytes;) {
                const ssize_t r = pread(fd, dst + done, it.ft->nbytes - done, (off_t)(it.ft->off + done));
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) truncated(it.t);
                done += (size_t)r;
            }
            convert_and_check(it.t, *it.ft, dst, it.t->data);
            read_bytes_ += it.ft->nbytes;
        }
    });
}

ggml_tensor *weight_map::find(const std::string &name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return nullptr;
    if (!buf_) used_.insert(name);  // shape pass
    return it->second;
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

std::string weight_map::weight_type() const {
    std::map<std::string, int> count;
    for (auto &kv : tensors_) {
        if (kv.first.rfind(std::string(schema::kVit) + schema::tn::kBlock + ".", 0) == 0 && kv.first.size() > 7 &&
            kv.first.compare(kv.first.size() - 7, 7, ".weight") == 0 && ggml_n_dims(kv.second) == 2) {
            count[ggml_type_name(kv.second->type)]++;
        }
    }
    if (count.empty()) return "unknown";
    if (count.size() > 1) return "mixed";
    return count.begin()->first;
}

}  // namespace da3
