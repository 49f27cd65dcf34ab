// Reference view selection (reference_view.h). ref: depth_anything_3/model/reference_view_selector.py
#include "host/reference_view.h"

#include <algorithm>
#include <cmath>

namespace da3 {

int select_reference_view(const std::vector<float> &cls, int S, int C, da3_ref_view_strategy s) {
    if (S <= 1 || s == DA3_REF_FIRST) return 0;
    if (s == DA3_REF_MIDDLE) return S / 2;
    std::vector<double> nrm(S), var(S);
    std::vector<std::vector<double>> f(S, std::vector<double>(C));
    for (int i = 0; i < S; ++i) {
        double ss = 0;
        for (int c = 0; c < C; ++c) ss += (double)cls[i * C + c] * cls[i * C + c];
        nrm[i] = std::sqrt(ss);
        double mean = 0;
        for (int c = 0; c < C; ++c) mean += (f[i][c] = cls[i * C + c] / nrm[i]);
        mean /= C;
        double v = 0;
        for (int c = 0; c < C; ++c) v += (f[i][c] - mean) * (f[i][c] - mean);
        var[i] = v / (C - 1);  // unbiased, as torch.var
    }
    auto sim = [&](int a, int b) {
        double d = 0;
        for (int c = 0; c < C; ++c) d += f[a][c] * f[b][c];
        return d - (a == b ? 1.0 : 0.0);
    };
    if (s == DA3_REF_SADDLE_SIM_RANGE) {
        int best = 0;
        double best_v = -1e300;
        for (int i = 0; i < S; ++i) {
            double mx = -1e300, mn = 1e300;
            for (int j = 0; j < S; ++j) {
                double v = sim(i, j);
                mx = std::max(mx, v);
                mn = std::min(mn, v);
            }
            if (mx - mn > best_v) best_v = mx - mn, best = i;
        }
        return best;
    }
    std::vector<double> score(S);
    for (int i = 0; i < S; ++i) {
        double acc = 0;
        for (int j = 0; j < S; ++j) acc += sim(i, j);
        score[i] = acc / (S - 1);
    }
    auto normalize = [&](std::vector<double> &v) {
        double mn = *std::min_element(v.begin(), v.end()), mx = *std::max_element(v.begin(), v.end());
        for (double &x : v) x = (x - mn) / (mx - mn + 1e-8);
    };
    normalize(score);
    normalize(nrm);
    normalize(var);
    int best = 0;
    double best_v = 1e300;
    for (int i = 0; i < S; ++i) {
        double b = std::fabs(score[i] - 0.5) + std::fabs(nrm[i] - 0.5) + std::fabs(var[i] - 0.5);
        if (b < best_v) best_v = b, best = i;
    }
    return best;
}

}  // namespace da3
