// weight_map's metadata getters: typed, range-checked reads of "depthanything3." keys.
#include "gguf/weights.h"
#include "gguf/schema.h"

#include "gguf.h"

#include <cmath>
#include <cstring>

namespace da3 {

static const std::string kPrefix = std::string(schema::kArch) + ".";

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

}  // namespace da3
