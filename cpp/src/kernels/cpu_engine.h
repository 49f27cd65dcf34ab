// Which matrix engines this build, CPU and OS offer: the one place our kernels ask (the bf16
// GEMM, cpu_gemm_amx.cpp, and any later AMX / NEON kernel), checked once per process.
//
// Engines are compiled only in builds whose baseline can carry them (DA3_BF16_ENGINES: x86-64
// with AVX-512, GCC >= 11 or Clang), each in functions marked with its target attribute
// (DA3_TARGET_AMX, DA3_TARGET_BF16) that run only after cpu_engines_here() says so. An ARM
// engine (NEON bf16 / i8mm, SME) adds its flag to cpu_engine_offer, its detection to
// cpu_engine.cpp and its value to the engine enums below.
#pragma once

#if defined(__AVX512F__) && defined(__x86_64__) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 11)
#define DA3_BF16_ENGINES 1
// only functions marked so may contain AMX / AVX512-BF16 instructions; they run after the check
#define DA3_TARGET_AMX __attribute__((target("amx-tile,amx-bf16")))
#define DA3_TARGET_BF16 __attribute__((target("avx512bf16")))
#endif

namespace da3 {

// What the CPU and OS offer (all false where this build carries no engine): AMX-TILE + AMX-BF16
// (CPUID, XCR0 tile state, Linux tile-data permission granted by arch_prctl), AVX512-BF16
// (CPUID, XCR0 AVX-512 state).
struct cpu_engine_offer {
    bool amx_bf16 = false, avx512_bf16 = false;
};
const cpu_engine_offer &cpu_engines_here();

enum class bf16_engine { none = 0, avx512_bf16 = 1, amx_bf16 = 2 };

// The one dispatch point: the best engine this build, CPU and OS offer (CPUID AMX-TILE, AMX-BF16,
// AVX512-BF16; XCR0 with the AVX-512 and tile states enabled; Linux tile-data permission granted
// by arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). Checked once per process.
bf16_engine bf16_engine_available();
// "amx_bf16", "avx512_bf16", "f32" (none)
const char *bf16_engine_name(bf16_engine e);
// Every engine offered here, best first, comma-separated ("" when none).
const char *bf16_engines_offered();
// The engines this build carries (run only after the check), comma-separated ("" when none).
const char *bf16_engines_compiled();

}  // namespace da3
