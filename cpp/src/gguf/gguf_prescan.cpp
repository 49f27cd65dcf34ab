// Structural check of a GGUF file, run before ggml's reader (weight_map::open).
#include "gguf/gguf_prescan.h"
#include "gguf/weights.h"

#include "gguf.h"

#include <unordered_set>

namespace da3 {

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

std::string gguf_prescan_file(FILE *f, uint64_t size) { return gguf_prescan(f, size).run(); }

}  // namespace da3
