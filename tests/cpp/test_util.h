// Helpers shared by the C++ kernel tests (test_cpu_gemm.cpp, test_cpu_gemm_bf16.cpp): a failure
// counter with one report line per check, seeded normal samples, and the relative error against a
// double-precision reference. Header-only; each test is its own executable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

inline int g_failures = 0;

inline void check(bool ok, const char *what, double err) {
    std::printf("%-72s max rel err %.2e %s\n", what, err, ok ? "ok" : "FAIL");
    if (!ok) ++g_failures;
}

inline std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float &x : v) x = d(rng);
    return v;
}

// Max |a - b| over max |b|.
inline double rel_err(const std::vector<float> &a, const std::vector<double> &b) {
    double e = 0.0, m = 1e-30;
    for (size_t i = 0; i < a.size(); ++i) {
        e = std::max(e, std::fabs((double)a[i] - b[i]));
        m = std::max(m, std::fabs(b[i]));
    }
    return e / m;
}
