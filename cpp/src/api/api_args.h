// Checks of the C API's inference arguments (api_args.cpp); each throws da3::error
// (DA3_ERR_INVALID_ARGUMENT) with a message naming the argument.
#pragma once

#include "depth_anything.h"

namespace da3 {

void check_view_count(int n_views);
// Enum fields of da3_infer_params (resize_method is checked by the preprocessing).
void check_infer_params(const da3_infer_params &p);
// The input cameras of n views against the model of ctx.
void check_poses(const da3_context *ctx, const float *ext, int ext_rows, const float *intr, int n);

}  // namespace da3
