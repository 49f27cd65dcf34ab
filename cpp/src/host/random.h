// The seeded random generators of the host code, each tied to results that must not change:
//  - numpy_pcg64: a bit-exact copy of numpy's default_rng(seed) and Generator.choice, so the
//    Umeyama RANSAC of input-pose alignment (host/pose.cpp) draws the subsets PyTorch's path draws;
//  - mt19937_sampler: std::mt19937_64 (fully specified by the standard), the ray-pose RANSAC
//    stream (host/ray_pose.cpp; tests/test_ray_pose.py replays it);
//  - splitmix64: the points' subsampling (host/points.cpp; its seed is a public option).
// One generator for all would change the outputs of two of them for the same seed.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace da3 {
namespace rng {

struct u128 { uint64_t hi, lo; };
inline u128 mul64(uint64_t a, uint64_t b) {
    const uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    return {p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), (mid << 32) | (p00 & 0xFFFFFFFFu)};
}
inline u128 mul(u128 a, u128 b) { u128 r = mul64(a.lo, b.lo); r.hi += a.hi * b.lo + a.lo * b.hi; return r; }
inline u128 add(u128 a, u128 b) { u128 r{a.hi + b.hi, a.lo + b.lo}; if (r.lo < a.lo) ++r.hi; return r; }
// numpy.random.default_rng(seed): SeedSequence + PCG64, and Generator.choice(pop, size,
// replace=False) for pop <= 10000 (Floyd's algorithm + shuffle), bit-exact, so RANSAC picks the
// same subsets as PyTorch's path. ref: numpy/random/bit_generator.pyx (SeedSequence),
// numpy/random/src/pcg64, numpy/random/_generator.pyx (choice), distributions.c (bounded ints).
struct numpy_pcg64 {
    u128 state{0, 0}, inc{0, 0};
    bool has32 = false; uint32_t u32 = 0;
    static constexpr u128 kMult{2549297995355413924ULL, 4865540595714422341ULL};
    void step() { state = add(mul(state, kMult), inc); }
    explicit numpy_pcg64(uint64_t seed) {
        // SeedSequence(seed).generate_state(4, uint64)  (ref: numpy/random/bit_generator.pyx)
        const uint32_t INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded,
                       MIX_L = 0xca01f9dd, MIX_R = 0x4973f715;
        std::vector<uint32_t> entropy;
        uint64_t s = seed;
        do { entropy.push_back((uint32_t)s); s >>= 32; } while (s);
        uint32_t hc = INIT_A;
        auto hashmix = [&](uint32_t v) { v ^= hc; hc *= MULT_A; v *= hc; v ^= v >> 16; return v; };
        auto mix = [&](uint32_t x, uint32_t y) { uint32_t r = MIX_L * x - MIX_R * y; r ^= r >> 16; return r; };
        std::array<uint32_t, 4> pool{};
        for (size_t i = 0; i < 4; ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0);
        for (size_t a = 0; a < 4; ++a)
            for (size_t b = 0; b < 4; ++b)
                if (a != b) pool[b] = mix(pool[b], hashmix(pool[a]));
        for (size_t a = 4; a < entropy.size(); ++a)
            for (size_t b = 0; b < 4; ++b) pool[b] = mix(pool[b], hashmix(entropy[a]));
        uint32_t w[8];
        uint32_t hb = INIT_B;
        for (int i = 0; i < 8; ++i) { uint32_t v = pool[i % 4]; v ^= hb; hb *= MULT_B; v *= hb; v ^= v >> 16; w[i] = v; }
        uint64_t val[4];
        for (int i = 0; i < 4; ++i) val[i] = (uint64_t)w[2 * i] | ((uint64_t)w[2 * i + 1] << 32);
        // pcg64_set_seed -> pcg_setseq_128_srandom_r
        const u128 initstate{val[0], val[1]}, initseq{val[2], val[3]};
        inc = {(initseq.hi << 1) | (initseq.lo >> 63), (initseq.lo << 1) | 1u};
        state = {0, 0};
        step();
        state = add(state, initstate);
        step();
    }
    uint64_t next64() {
        step();
        const uint64_t x = state.hi ^ state.lo;
        const unsigned rot = (unsigned)(state.hi >> 58);
        return (x >> rot) | (x << ((64 - rot) & 63));
    }
    uint32_t next32() {
        if (has32) { has32 = false; return u32; }
        const uint64_t n = next64();
        has32 = true; u32 = (uint32_t)(n >> 32);
        return (uint32_t)n;
    }
    // random_bounded_uint64(0, rng) for rng < 2^32 (Lemire, unbuffered)
    uint64_t bounded(uint64_t rng) {
        if (rng == 0) return 0;
        if (rng == 0xFFFFFFFFu) return next32();
        const uint32_t excl = (uint32_t)rng + 1;
        uint64_t m = (uint64_t)next32() * excl;
        uint32_t left = (uint32_t)m;
        if (left < excl) {
            const uint32_t thr = (uint32_t)(UINT32_MAX - (uint32_t)rng) % excl;
            while (left < thr) { m = (uint64_t)next32() * excl; left = (uint32_t)m; }
        }
        return m >> 32;
    }
    // Generator.choice(pop, size, replace=False, shuffle=True) for pop <= 10000 (Floyd + shuffle)
    std::vector<int64_t> choice(int64_t pop, int64_t size) {
        std::vector<int64_t> idx(size);
        std::vector<char> in(pop, 0);
        for (int64_t j = pop - size; j < pop; ++j) {
            const int64_t v = (int64_t)bounded((uint64_t)j);
            const int64_t pick = in[v] ? j : v;
            in[pick] = 1;
            idx[j - pop + size] = pick;
        }
        for (int64_t i = size - 1; i >= 1; --i) {
            const int64_t j = (int64_t)bounded((uint64_t)i);
            std::swap(idx[i], idx[j]);
        }
        return idx;
    }
};

// Uniform integers in [0, n) from mt19937_64 (fully specified by the standard, unlike
// std::uniform_int_distribution), so a seed gives the same draws on every platform.
class mt19937_sampler {
public:
    explicit mt19937_sampler(uint64_t seed) : gen_(seed) {}
    uint64_t below(uint64_t n) {
        const uint64_t reject = (0 - n) % n;  // 2^64 mod n: values under it would bias
        for (;;) {
            const uint64_t x = gen_();
            if (x >= reject) return x % n;
        }
    }
    // Moves k uniformly chosen distinct elements of idx to its front (partial Fisher-Yates).
    void choose(std::vector<size_t> &idx, size_t k) {
        for (size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + below(idx.size() - i)]);
    }

private:
    std::mt19937_64 gen_;
};

// splitmix64 (Steele, Lea, Flood 2014): small, seedable, good enough for sampling.
struct splitmix64 {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

}  // namespace rng
}  // namespace da3
