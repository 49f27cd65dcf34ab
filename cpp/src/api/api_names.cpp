// C API: the names of enum values (one table per enum, the only place they are spelled).
#include "depth_anything.h"

#include <iterator>

namespace {

template <size_t N>
const char *name_at(const char *const (&names)[N], int value) {
    return value >= 0 && value < (int)N ? names[value] : nullptr;
}

// indexed by the enum value (depth_anything.h)
const char *const k_resize_methods[] = {"upper_bound_resize", "lower_bound_resize"};
const char *const k_ref_view_strategies[] = {"saddle_balanced", "first", "middle", "saddle_sim_range"};
const char *const k_backend_kinds[] = {"auto", "cpu", "gpu"};
const char *const k_precisions[] = {"auto", "f32", "bf16"};

static_assert(std::size(k_resize_methods) == DA3_RESIZE_LOWER_BOUND + 1, "one name per da3_resize_method");
static_assert(std::size(k_ref_view_strategies) == DA3_REF_SADDLE_SIM_RANGE + 1, "one name per da3_ref_view_strategy");
static_assert(std::size(k_backend_kinds) == DA3_BACKEND_GPU + 1, "one name per da3_backend_kind");
static_assert(std::size(k_precisions) == DA3_PRECISION_BF16 + 1, "one name per da3_precision");

}  // namespace

extern "C" {

const char *da3_resize_method_name(int value) { return name_at(k_resize_methods, value); }
const char *da3_ref_view_strategy_name(int value) { return name_at(k_ref_view_strategies, value); }
const char *da3_backend_kind_name(int value) { return name_at(k_backend_kinds, value); }
const char *da3_precision_name(int value) { return name_at(k_precisions, value); }

}  // extern "C"
