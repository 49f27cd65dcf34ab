// Choice of the reference view from the backbone's cls tokens (host side).
// ref: depth_anything_3/model/reference_view_selector.py
#pragma once

#include "depth_anything.h"

#include <vector>

namespace da3 {

// Index of the reference view among S views given their cls tokens `cls` [S, C].
int select_reference_view(const std::vector<float> &cls, int S, int C, da3_ref_view_strategy s);

}  // namespace da3
