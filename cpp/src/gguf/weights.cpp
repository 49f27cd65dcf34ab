#include "gguf/weights.h"

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

static const char *kPrefix = "depthanything3.";

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

namespace {

// Structural check of the GGUF header, metadata and tensor table against the file size,
// run before ggml's reader, which crashes on some corrupt inputs. ref: ggml/src/gguf.cpp
// (gguf_init_from_reader) for the layout. What in ggml 0.15.3's reader a file can reach, and
// what rejects it here first: a zero dimension (SIGFPE in the element-count check); an empty
// key (GGML_ASSERT in gguf_kv); general.alignment of a type other than a UINT32 scalar
// (GGML_ABORT / GGML_ASSERT in gguf_get_val_u32); quadratic-time duplicate scans (bounded
// counts). Its other asserts (read_raw's byte count, kv/info counts, get_ne) cannot be reached
// from a file; the rest (duplicates, block sizes, offsets, alignment value) ggml rejects
// cleanly, and this checks them too for a message naming the entry.
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
        // ggml's reader checks duplicates pairwise (quadratic time): bounded far above any DA3 file
        if (n_kv > kMaxKv) return "corrupt header: " + std::to_string(n_kv) + " metadata entries (at most " + std::to_string(kMaxKv) + ")";
        if (n_tensors > kMaxTensors) return "corrupt header: " + std::to_string(n_tensors) + " tensors (at most " + std::to_string(kMaxTensors) + ")";
        std::unordered_set<std::string> seen;
        for (uint64_t i = 0; i < n_kv; ++i) {
            std::string key;
            uint32_t type = 0;
            if (!rd_str(key)) return "truncated or corrupt metadata (key of entry " + std::to_string(i) + ")";
            // ggml asserts on an empty key (gguf_kv constructor)
            if (key.empty()) return "metadata entry " + std::to_string(i) + " has an empty key";
            const std::string what = "metadata entry '" + printable(key) + "'";
            if (!seen.insert(key).second) return "duplicate " + what;
            if (!rd(type)) return "truncated " + what;
            if (key == "general.alignment") {
                // ggml reads it with gguf_get_val_u32, which aborts on any other type
                uint32_t a = 0;
                if (type != kUint32) return what + " must be a UINT32 (GGUF type 4), got GGUF type " + std::to_string(type);
                if (!rd(a)) return "truncated " + what;
                if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment) return what + " = " + std::to_string(a) + " is not a power of two up to " + std::to_string(kMaxAlignment);
                alignment_ = a;
                continue;
            }
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
        seen.clear();
        uint64_t data_size = 0;  // of the tensors so far, each padded to the alignment
        for (uint64_t i = 0; i < n_tensors; ++i) {
            std::string name;
            uint32_t n_dims = 0, type = 0;
            uint64_t offset = 0;
            if (!rd_str(name)) return "truncated or corrupt tensor table (name of tensor " + std::to_string(i) + ")";
            const std::string what = "tensor table: tensor '" + printable(name) + "'";
            if (name.size() >= GGML_MAX_NAME) return what + ": name too long";
            if (!seen.insert(name).second) return "duplicate " + what;
            if (!rd(n_dims)) return "truncated " + what;
            if (n_dims < 1 || n_dims > GGML_MAX_DIMS) return what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)";
            uint64_t nel = 1, ne0 = 0;
            for (uint32_t j = 0; j < n_dims; ++j) {
                uint64_t ne = 0;
                if (!rd(ne)) return "truncated " + what;
                if (j == 0) ne0 = ne;
                // at most 2 elements per byte of file (4-bit types)
                if (ne == 0 || ne > 2 * size_) return what + " has invalid dimension " + std::to_string(ne);
                nel *= ne;
                if (nel > 2 * size_) return what + " is larger than the file";
            }
            if (!rd(type) || !rd(offset)) return "truncated " + what;
            if (type >= GGML_TYPE_COUNT || ggml_type_size((ggml_type)type) == 0 || ggml_blck_size((ggml_type)type) <= 0) {
                return what + " has invalid type " + std::to_string(type);
            }
            const uint64_t blck = (uint64_t)ggml_blck_size((ggml_type)type);
            if (ne0 % blck != 0) {
                return what + " of type " + ggml_type_name((ggml_type)type) + " has rows of " + std::to_string(ne0) +
                       " elements, not a multiple of its block size " + std::to_string(blck);
            }
            if (offset > size_) return what + " has a data offset past the end of the file";
            // ggml's reader wants the tensors' data back to back in table order, each padded
            if (offset != data_size) return what + " has data offset " + std::to_string(offset) + ", expected " + std::to_string(data_size);
            const uint64_t nbytes = nel / blck * ggml_type_size((ggml_type)type);  // nel <= 2 * size_: no overflow
            data_size += (nbytes + alignment_ - 1) / alignment_ * alignment_;
            if (data_size > size_) return what + " is larger than the file";
        }
        return "";
    }

private:
    static constexpr uint32_t kUint32 = 4, kString = 8, kArray = 9;  // gguf_type values
    static constexpr uint64_t kMaxKv = 4096, kMaxTensors = 16384, kMaxAlignment = 1 << 20;
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
    uint64_t alignment_ = GGUF_DEFAULT_ALIGNMENT;
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

static bool ends_with(const std::string &s, const char *suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

ggml_type tensor_type_for_role(const std::string &name, ggml_type stored) {
    // the quantized set of convert.py (QUANTIZED_TENSORS): every stored type is taken as it is
    const std::string n = name.rfind("m_vit.", 0) == 0 ? name.substr(2) : name;
    bool matmul = false;
    if (n.rfind("vit.blk.", 0) == 0) {
        for (const char *s : {".attn_qkv.weight", ".attn_proj.weight", ".mlp_fc1.weight", ".mlp_fc2.weight",
                              ".mlp_w12.weight", ".mlp_w3.weight"}) {
            matmul = matmul || ends_with(n, s);
        }
    } else if (n.rfind("cam_enc.trunk.", 0) == 0) {
        for (const char *s : {".attn.qkv.weight", ".attn.proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight"}) {
            matmul = matmul || ends_with(n, s);
        }
    } else {
        for (const char *s : {"cam.bb0.weight", "cam.bb2.weight", "cam.fc_t.weight", "cam.fc_q.weight", "cam.fc_fov.weight"}) {
            matmul = matmul || n == s;
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

int64_t weight_map::key_id(const std::string &key) const { return gguf_find_key(gguf_, (kPrefix + key).c_str()); }

std::string weight_map::key_name(const std::string &key) const { return "metadata key '" + std::string(kPrefix) + key + "'"; }

bool weight_map::has_key(const std::string &key) const { return key_id(key) >= 0; }

// An integer value of any GGUF integer type as int64 (false for other types, bool included,
// and for a UINT64 above INT64_MAX, reported as out of range by the caller).
static bool read_int(const gguf_context *g, int64_t id, int64_t &out, bool &overflow) {
    overflow = false;
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_UINT8: out = gguf_get_val_u8(g, id); return true;
        case GGUF_TYPE_INT8: out = gguf_get_val_i8(g, id); return true;
        case GGUF_TYPE_UINT16: out = gguf_get_val_u16(g, id); return true;
        case GGUF_TYPE_INT16: out = gguf_get_val_i16(g, id); return true;
        case GGUF_TYPE_UINT32: out = gguf_get_val_u32(g, id); return true;
        case GGUF_TYPE_INT32: out = gguf_get_val_i32(g, id); return true;
        case GGUF_TYPE_UINT64: {
            const uint64_t u = gguf_get_val_u64(g, id);
            overflow = u > (uint64_t)INT64_MAX;
            out = overflow ? INT64_MAX : (int64_t)u;
            return true;
        }
        case GGUF_TYPE_INT64: out = gguf_get_val_i64(g, id); return true;
        default: return false;
    }
}

int64_t weight_map::get_int(const std::string &key, int64_t lo, int64_t hi) const {
    int64_t id = key_id(key), v = 0;
    bool overflow = false;
    if (id < 0) format_error("missing " + key_name(key));
    if (!read_int(gguf_, id, v, overflow)) format_error(key_name(key) + " is not an integer (GGUF type " + std::to_string(gguf_get_kv_type(gguf_, id)) + ")");
    if (overflow || v < lo || v > hi) {
        format_error(key_name(key) + " = " + (overflow ? std::to_string(gguf_get_val_u64(gguf_, id)) : std::to_string(v)) +
                     " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return v;
}

int64_t weight_map::get_int_or(const std::string &key, int64_t def, int64_t lo, int64_t hi) const {
    return has_key(key) ? get_int(key, lo, hi) : def;
}

static std::string float_str(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
}

float weight_map::get_float(const std::string &key, float lo, float hi) const {
    int64_t id = key_id(key), iv = 0;
    bool overflow = false;
    if (id < 0) format_error("missing " + key_name(key));
    double v = 0;
    switch (gguf_get_kv_type(gguf_, id)) {
        case GGUF_TYPE_FLOAT32: v = gguf_get_val_f32(gguf_, id); break;
        case GGUF_TYPE_FLOAT64: v = gguf_get_val_f64(gguf_, id); break;
        default:
            if (!read_int(gguf_, id, iv, overflow)) format_error(key_name(key) + " is not a number");
            v = overflow ? (double)gguf_get_val_u64(gguf_, id) : (double)iv;
    }
    // in double: an f64 beyond the float range is out of range, not inf
    if (!std::isfinite(v) || v < lo || v > hi) {
        format_error(key_name(key) + " = " + float_str(v) + " is out of range [" + float_str(lo) + ", " + float_str(hi) + "]");
    }
    return (float)v;
}

float weight_map::get_float_or(const std::string &key, float def, float lo, float hi) const {
    return has_key(key) ? get_float(key, lo, hi) : def;
}

bool weight_map::get_bool_or(const std::string &key, bool def) const {
    int64_t id = key_id(key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) == GGUF_TYPE_BOOL) return gguf_get_val_bool(gguf_, id);
    int64_t v = 0;
    bool overflow = false;
    if (!read_int(gguf_, id, v, overflow) || overflow || (v != 0 && v != 1)) {
        format_error(key_name(key) + " is not a bool (or the integer 0 or 1)");
    }
    return v != 0;
}

std::string weight_map::get_str_or(const std::string &key, const std::string &def) const {
    int64_t id = key_id(key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_STRING) format_error(key_name(key) + " is not a string");
    return gguf_get_val_str(gguf_, id);
}

std::string weight_map::get_general_str_or(const std::string &full_key, const std::string &def) const {
    int64_t id = gguf_find_key(gguf_, full_key.c_str());
    if (id < 0 || gguf_get_kv_type(gguf_, id) != GGUF_TYPE_STRING) return def;
    return gguf_get_val_str(gguf_, id);
}

std::vector<int64_t> weight_map::get_int_array(const std::string &key) const {
    int64_t id = key_id(key);
    if (id < 0) format_error("missing " + key_name(key));
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_ARRAY) format_error(key_name(key) + " is not an array");
    const size_t n = gguf_get_arr_n(gguf_, id);
    const void *d = gguf_get_arr_data(gguf_, id);
    std::vector<int64_t> out(n);
    switch (gguf_get_arr_type(gguf_, id)) {
        case GGUF_TYPE_INT32: for (size_t i = 0; i < n; ++i) out[i] = ((const int32_t *)d)[i]; break;
        case GGUF_TYPE_UINT32: for (size_t i = 0; i < n; ++i) out[i] = ((const uint32_t *)d)[i]; break;
        case GGUF_TYPE_INT64: for (size_t i = 0; i < n; ++i) out[i] = ((const int64_t *)d)[i]; break;
        case GGUF_TYPE_UINT64:
            for (size_t i = 0; i < n; ++i) {
                const uint64_t u = ((const uint64_t *)d)[i];
                if (u > (uint64_t)INT64_MAX) format_error(key_name(key) + "[" + std::to_string(i) + "] = " + std::to_string(u) + " is out of range");
                out[i] = (int64_t)u;
            }
            break;
        default: format_error(key_name(key) + " is not an integer array");
    }
    return out;
}

std::vector<float> weight_map::get_float_array_or(const std::string &key, std::vector<float> def) const {
    int64_t id = key_id(key);
    if (id < 0) return def;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_ARRAY || gguf_get_arr_type(gguf_, id) != GGUF_TYPE_FLOAT32) {
        format_error(key_name(key) + " is not a float array");
    }
    const size_t n = gguf_get_arr_n(gguf_, id);
    const float *d = (const float *)gguf_get_arr_data(gguf_, id);
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(d[i])) format_error(key_name(key) + "[" + std::to_string(i) + "] = " + float_str(d[i]) + " is not finite");
    }
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
