// The ViT's position embedding at the input's patch grid: the pretrained [1 + G*G, C] table
// resized on the host as PyTorch's bicubic interpolation does (an input of the graph).
#include "graph/vit.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace da3 {

namespace {

// PyTorch upsample_bicubic2d (align_corners=False, A=-0.75, clamped borders).
// ref: aten/src/ATen/native/UpSample.h (cubic_convolution1/2, area_pixel_compute_source_index)
void cubic_coeffs(float t, float c[4]) {
    const float A = -0.75f;
    auto conv1 = [&](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
    auto conv2 = [&](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
    c[0] = conv2(t + 1.0f);
    c[1] = conv1(t);
    c[2] = conv1(1.0f - t);
    c[3] = conv2(2.0f - t);
}

}  // namespace

std::vector<float> interpolate_pos_embed(const vit_model &m, int ph, int pw) {
    const int C = m.hp.embed_dim, G = m.hp.pos_embed_grid;
    const float *src = m.pos_embed_host.data();  // [1 + G*G, C]
    std::vector<float> out((size_t)(1 + ph * pw) * C);
    std::copy(src, src + C, out.begin());
    if (ph == G && pw == G) {
        std::copy(src, src + (size_t)(1 + G * G) * C, out.begin());
        return out;
    }
    // scale_factor given -> the kernel maps with 1/scale_factor (computed in double, used as float)
    const float sy = (float)(1.0 / (((double)ph + m.hp.interpolate_offset) / G));
    const float sx = (float)(1.0 / (((double)pw + m.hp.interpolate_offset) / G));
    const float *grid = src + C;  // [G, G, C]
    auto at = [&](int y, int x) {
        y = std::min(std::max(y, 0), G - 1);
        x = std::min(std::max(x, 0), G - 1);
        return grid + ((size_t)y * G + x) * C;
    };
    std::vector<float> row(4 * (size_t)C);
    for (int oy = 0; oy < ph; ++oy) {
        const float ry = sy * (oy + 0.5f) - 0.5f;
        const int iy = (int)std::floor(ry);
        float wy[4];
        cubic_coeffs(ry - iy, wy);
        for (int ox = 0; ox < pw; ++ox) {
            const float rx = sx * (ox + 0.5f) - 0.5f;
            const int ix = (int)std::floor(rx);
            float wx[4];
            cubic_coeffs(rx - ix, wx);
            float *dst = out.data() + (size_t)(1 + oy * pw + ox) * C;
            const float *tap[4][4];  // the 4x4 source pixels (clamped), hoisted out of the channel loop
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) tap[i][j] = at(iy - 1 + i, ix - 1 + j);
            for (int c = 0; c < C; ++c) {
                float acc = 0.0f;
                for (int i = 0; i < 4; ++i) {
                    const float r = tap[i][0][c] * wx[0] + tap[i][1][c] * wx[1] + tap[i][2][c] * wx[2] + tap[i][3][c] * wx[3];
                    acc += r * wy[i];
                }
                dst[c] = acc;
            }
        }
    }
    return out;
}

}  // namespace da3
