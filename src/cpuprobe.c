/*
 * _cpuprobe - which CPU ISA extensions this processor *and* OS support.
 *
 * Compiled with baseline flags only (no -m<isa> / -march), so importing it is safe on any x86-64,
 * aarch64 (or other) CPU. The variant chooser uses it before importing a variant module that may
 * contain AVX2/AVX-512 instructions.
 *
 * AVX-family features are reported only when the OS saves the register state
 * (CPUID.1:ECX.OSXSAVE and XCR0 via xgetbv): YMM for AVX/AVX2/FMA/F16C, plus opmask/ZMM for
 * AVX-512. ref: Intel SDM vol. 1, 13.3 / 15.2 "Detection of AVX-512 support".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#define DA3_PROBE_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    int v[4];
    __cpuidex(v, (int)leaf, (int)sub);
    memcpy(r, v, sizeof(v));
}
static unsigned long long xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
/* xgetbv by opcode: no -mxsave needed. Only called when CPUID reports OSXSAVE. */
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif
#else
#define DA3_PROBE_X86 0
#endif

/* aarch64 Linux: the kernel's HWCAP words (what the CPU has and the kernel enabled, e.g. SVE).
 * Bit numbers: linux arch/arm64/include/uapi/asm/hwcap.h (fixed ABI, spelled out for old libc
 * headers); names as /proc/cpuinfo "Features" prints them. */
#if defined(__aarch64__) && defined(__linux__)
#define DA3_PROBE_ARM64 1
#include <sys/auxv.h>
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
static const struct { const char *name; int word, bit; } arm64_caps[] = {
    {"fp", 1, 0},       {"asimd", 1, 1},     {"aes", 1, 3},       {"pmull", 1, 4},
    {"sha1", 1, 5},     {"sha2", 1, 6},      {"crc32", 1, 7},     {"atomics", 1, 8},
    {"fphp", 1, 9},     {"asimdhp", 1, 10},  {"asimdrdm", 1, 12}, {"lrcpc", 1, 15},
    {"asimddp", 1, 20}, {"sve", 1, 22},      {"asimdfhm", 1, 23}, {"sve2", 2, 1},
    {"svei8mm", 2, 9},  {"svebf16", 2, 12},  {"i8mm", 2, 13},     {"bf16", 2, 14},
};
#else
#define DA3_PROBE_ARM64 0
#endif

static int set_flag(PyObject *d, const char *name, int on) {
    return PyDict_SetItemString(d, name, on ? Py_True : Py_False);
}

#define BIT(reg, n) (((reg) >> (n)) & 1u)

/* features() -> dict[str, bool]; empty on processors other than x86 and aarch64 Linux. */
static PyObject *probe_features(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
#if DA3_PROBE_X86
    unsigned r0[4], r1[4], r7[4] = {0, 0, 0, 0}, r71[4] = {0, 0, 0, 0};
    cpuid(0, 0, r0);
    const unsigned max_leaf = r0[0];
    cpuid(1, 0, r1);
    if (max_leaf >= 7) {
        cpuid(7, 0, r7);
        if (r7[0] >= 1) cpuid(7, 1, r71);
    }
    const unsigned ecx1 = r1[2], edx1 = r1[3], ebx7 = r7[1], ecx7 = r7[2], eax71 = r71[0];

    const int osxsave = BIT(ecx1, 27);
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    const int os_avx = osxsave && (xcr0 & 0x6) == 0x6;               /* XMM | YMM */
    const int os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;           /* opmask | ZMM_Hi256 | Hi16_ZMM */

    int ok = 1;
    ok &= set_flag(d, "sse2", BIT(edx1, 26)) == 0;
    ok &= set_flag(d, "sse3", BIT(ecx1, 0)) == 0;
    ok &= set_flag(d, "ssse3", BIT(ecx1, 9)) == 0;
    ok &= set_flag(d, "sse4_1", BIT(ecx1, 19)) == 0;
    ok &= set_flag(d, "sse4_2", BIT(ecx1, 20)) == 0;
    ok &= set_flag(d, "popcnt", BIT(ecx1, 23)) == 0;
    ok &= set_flag(d, "osxsave", osxsave) == 0;
    ok &= set_flag(d, "os_avx", os_avx) == 0;
    ok &= set_flag(d, "os_avx512", os_avx512) == 0;
    ok &= set_flag(d, "avx", os_avx && BIT(ecx1, 28)) == 0;
    ok &= set_flag(d, "fma", os_avx && BIT(ecx1, 12)) == 0;
    ok &= set_flag(d, "f16c", os_avx && BIT(ecx1, 29)) == 0;
    ok &= set_flag(d, "avx2", os_avx && BIT(ebx7, 5)) == 0;
    ok &= set_flag(d, "bmi1", BIT(ebx7, 3)) == 0;
    ok &= set_flag(d, "bmi2", BIT(ebx7, 8)) == 0;
    ok &= set_flag(d, "avx_vnni", os_avx && BIT(eax71, 4)) == 0;
    ok &= set_flag(d, "avx512f", os_avx512 && BIT(ebx7, 16)) == 0;
    ok &= set_flag(d, "avx512dq", os_avx512 && BIT(ebx7, 17)) == 0;
    ok &= set_flag(d, "avx512cd", os_avx512 && BIT(ebx7, 28)) == 0;
    ok &= set_flag(d, "avx512bw", os_avx512 && BIT(ebx7, 30)) == 0;
    ok &= set_flag(d, "avx512vl", os_avx512 && BIT(ebx7, 31)) == 0;
    ok &= set_flag(d, "avx512vbmi", os_avx512 && BIT(ecx7, 1)) == 0;
    ok &= set_flag(d, "avx512vnni", os_avx512 && BIT(ecx7, 11)) == 0;
    ok &= set_flag(d, "avx512bf16", os_avx512 && BIT(eax71, 5)) == 0;
    if (!ok) {
        Py_DECREF(d);
        return NULL;
    }
#elif DA3_PROBE_ARM64
    const unsigned long words[3] = {0, getauxval(AT_HWCAP), getauxval(AT_HWCAP2)};
    for (size_t i = 0; i < sizeof(arm64_caps) / sizeof(arm64_caps[0]); ++i) {
        if (set_flag(d, arm64_caps[i].name, (int)((words[arm64_caps[i].word] >> arm64_caps[i].bit) & 1ul)) != 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
#endif
    return d;
}

/* cpu_name() -> str: the CPUID brand string ("" if unavailable). */
static PyObject *probe_cpu_name(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    char brand[49];
    memset(brand, 0, sizeof(brand));
#if DA3_PROBE_X86
    unsigned r[4];
    cpuid(0x80000000u, 0, r);
    if (r[0] >= 0x80000004u) {
        for (unsigned i = 0; i < 3; ++i) {
            cpuid(0x80000002u + i, 0, r);
            memcpy(brand + 16 * i, r, 16);
        }
    }
#endif
    const char *s = brand;
    while (*s == ' ') ++s;
    return PyUnicode_DecodeASCII(s, (Py_ssize_t)strlen(s), "replace");
}

static PyMethodDef probe_methods[] = {
    {"features", probe_features, METH_NOARGS,
     "features() -> dict[str, bool]: ISA extensions usable by this process (CPU and OS support).\n"
     "Keys: sse2 sse3 ssse3 sse4_1 sse4_2 popcnt osxsave os_avx os_avx512 avx fma f16c avx2 bmi1 bmi2\n"
     "avx_vnni avx512f avx512dq avx512cd avx512bw avx512vl avx512vbmi avx512vnni avx512bf16.\n"
     "aarch64 Linux (HWCAP/HWCAP2): fp asimd aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm lrcpc\n"
     "asimddp sve asimdfhm sve2 svei8mm svebf16 i8mm bf16. Empty dict elsewhere."},
    {"cpu_name", probe_cpu_name, METH_NOARGS, "cpu_name() -> str: the processor brand string, '' if unknown."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef probe_module = {
    PyModuleDef_HEAD_INIT, "_cpuprobe",
    "Baseline-compiled CPU feature probe used to choose a depth_anything_cpp build variant.", -1,
    probe_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cpuprobe(void) {
    PyObject *m = PyModule_Create(&probe_module);
    if (!m) return NULL;
    if (PyModule_AddStringConstant(m, "arch", DA3_PROBE_X86 ? "x86" : DA3_PROBE_ARM64 ? "aarch64" : "other") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
