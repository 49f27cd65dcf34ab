#include "kernels/cpu_engine.h"

#include <cstdint>

#if defined(DA3_BF16_ENGINES)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace da3 {
namespace {

#if defined(DA3_BF16_ENGINES)
// OS permission to use the AMX tile data (Linux >= 5.16 asks for it once per process).
bool tile_permission() {
#if defined(__linux__)
    constexpr long ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return false;
    unsigned long bits = 0;
    return syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) == 0 && (bits >> XFEATURE_XTILEDATA & 1);
#else
    return true;  // other OSes enable the tile state for every process when XCR0 has it
#endif
}

cpu_engine_offer detect() {
    cpu_engine_offer o;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || __get_cpuid_max(0, nullptr) < 7) return o;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const uint64_t xcr0 = ((uint64_t)hi << 32) | lo;
    constexpr uint64_t AVX512_STATE = 0xe6, TILE_STATE = 3u << 17;  // SSE, AVX, opmask, ZMM; XTILECFG, XTILEDATA
    if ((xcr0 & AVX512_STATE) != AVX512_STATE) return o;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned max_sub = a;
    const bool avx512f = b >> 16 & 1, amx = (d >> 24 & 1) && (d >> 22 & 1);  // AMX-TILE, AMX-BF16
    if (!avx512f) return o;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        o.avx512_bf16 = a >> 5 & 1;
    }
    o.amx_bf16 = amx && (xcr0 & TILE_STATE) == TILE_STATE && tile_permission();
    return o;
}
#endif

}  // namespace

const cpu_engine_offer &cpu_engines_here() {
#if defined(DA3_BF16_ENGINES)
    static const cpu_engine_offer o = detect();
#else
    static const cpu_engine_offer o;
#endif
    return o;
}

bf16_engine bf16_engine_available() {
#if defined(DA3_BF16_ENGINES)
    if (cpu_engines_here().amx_bf16) return bf16_engine::amx_bf16;
    if (cpu_engines_here().avx512_bf16) return bf16_engine::avx512_bf16;
#endif
    return bf16_engine::none;
}

const char *bf16_engine_name(bf16_engine e) {
    switch (e) {
    case bf16_engine::amx_bf16: return "amx_bf16";
    case bf16_engine::avx512_bf16: return "avx512_bf16";
    default: return "f32";
    }
}

const char *bf16_engines_offered() {
#if defined(DA3_BF16_ENGINES)
    if (cpu_engines_here().amx_bf16 && cpu_engines_here().avx512_bf16) return "amx_bf16,avx512_bf16";
    if (cpu_engines_here().amx_bf16) return "amx_bf16";
    if (cpu_engines_here().avx512_bf16) return "avx512_bf16";
#endif
    return "";
}

const char *bf16_engines_compiled() {
#if defined(DA3_BF16_ENGINES)
    return "amx_bf16,avx512_bf16";
#else
    return "";
#endif
}

}  // namespace da3
