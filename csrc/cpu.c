/* CPU feature and cache detection (see cpu.h): CPUID and XGETBV on x86, read
 * with each compiler's own intrinsics; sysfs for the caches elsewhere on Linux. */
#define _GNU_SOURCE /* syscall() under -std=c11 */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portable.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FM_X86 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    int regs[4];
    __cpuidex(regs, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)regs[i];
}
static unsigned long long xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
/* Inline assembly: the _xgetbv intrinsic would need -mxsave on this file. */
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif
#endif

#define BIT(reg, n) (((reg) >> (n)) & 1u)

#if defined(FM_X86)
/* XCR0: which register states the OS saves on a context switch. */
#define XCR0_AVX (0x2u | 0x4u)             /* SSE and upper-YMM state */
#define XCR0_AVX512 (0x20u | 0x40u | 0x80u) /* opmask, ZMM_Hi256, Hi16_ZMM */
#define XCR0_AMX ((1u << 17) | (1u << 18))  /* XTILECFG, XTILEDATA */

static uint32_t detect(void) {
    unsigned r[4], leaf7[4] = {0}, leaf7_1[4] = {0};
    cpuid(0, 0, r);
    const unsigned max_leaf = r[0];
    cpuid(1, 0, r);
    const unsigned ecx1 = r[2], edx1 = r[3];
    if (max_leaf >= 7) {
        cpuid(7, 0, leaf7);
        if (leaf7[0] >= 1) cpuid(7, 1, leaf7_1);
    }
    const unsigned long long xcr0 = BIT(ecx1, 27) ? xgetbv0() : 0; /* OSXSAVE */
    const int os_avx = (xcr0 & XCR0_AVX) == XCR0_AVX;
    const int os_avx512 = os_avx && (xcr0 & XCR0_AVX512) == XCR0_AVX512;
    const int os_amx = (xcr0 & XCR0_AMX) == XCR0_AMX;
    const unsigned ebx7 = leaf7[1], ecx7 = leaf7[2], edx7 = leaf7[3], eax7_1 = leaf7_1[0];

    uint32_t f = 0;
    if (BIT(edx1, 26)) f |= FM_CPU_SSE2;
    if (os_avx) {
        if (BIT(ecx1, 28)) f |= FM_CPU_AVX;
        if (BIT(ebx7, 5)) f |= FM_CPU_AVX2;
        if (BIT(ecx1, 12)) f |= FM_CPU_FMA;
        if (BIT(ecx1, 29)) f |= FM_CPU_F16C;
        if (BIT(eax7_1, 4)) f |= FM_CPU_AVX_VNNI;
    }
    if (os_avx512 && BIT(ebx7, 16)) {
        f |= FM_CPU_AVX512F;
        if (BIT(ebx7, 17)) f |= FM_CPU_AVX512DQ;
        if (BIT(ebx7, 30)) f |= FM_CPU_AVX512BW;
        if (BIT(ebx7, 31)) f |= FM_CPU_AVX512VL;
        if (BIT(ecx7, 11)) f |= FM_CPU_AVX512_VNNI;
        if (BIT(eax7_1, 5)) f |= FM_CPU_AVX512_BF16;
    }
    if (os_amx && BIT(edx7, 24)) {
        f |= FM_CPU_AMX_TILE;
        if (BIT(edx7, 22)) f |= FM_CPU_AMX_BF16;
        if (BIT(edx7, 25)) f |= FM_CPU_AMX_INT8;
    }
    return f;
}
#elif defined(__aarch64__) || defined(_M_ARM64)
static uint32_t detect(void) { return FM_CPU_NEON; } /* part of the base architecture */
#else
static uint32_t detect(void) { return 0; }
#endif

/* Computed on first use; threads racing here store the same value. */
static fm_atomic_int features_plus_one;

uint32_t fm_cpu_features(void) {
    int cached = fm_atomic_load(&features_plus_one);
    if (cached == 0) {
        cached = (int)detect() + 1;
        fm_atomic_store(&features_plus_one, cached);
    }
    return (uint32_t)(cached - 1);
}

static const char *const feature_names[FM_CPU_N_FEATURES] = {
    "sse2",        "avx",         "avx2",     "fma",      "f16c",     "avx512f",
    "avx512dq",    "avx512bw",    "avx512vl", "avx512-vnni", "avx512-bf16", "avx-vnni",
    "amx-tile",    "amx-bf16",    "amx-int8", "neon",
};

const char *fm_cpu_feature_name(uint32_t bit) {
    for (int i = 0; i < FM_CPU_N_FEATURES; i++)
        if (bit == (1u << i)) return feature_names[i];
    return NULL;
}

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#define FM_ARCH_REQ_XCOMP_PERM 0x1023 /* <asm/prctl.h>, Linux 5.16 */
#define FM_XFEATURE_XTILEDATA 18
#endif

int fm_cpu_request_amx(void) {
    if (!(fm_cpu_features() & FM_CPU_AMX_TILE)) return -1;
#if defined(__linux__) && defined(__x86_64__)
    /* Linux enables the tile state per process, on request; older kernels
     * (EINVAL) or a refusal leave AMX unusable. */
    return syscall(SYS_arch_prctl, FM_ARCH_REQ_XCOMP_PERM, FM_XFEATURE_XTILEDATA) == 0 ? 0 : -1;
#elif defined(_WIN32)
    return 0; /* Windows enables the state for every process that XCR0 shows */
#else
    return -1; /* no way known here to ask for it */
#endif
}

/* -- caches -------------------------------------------------------------------------- */

#define DEFAULT_L1D (32u * 1024)
#define DEFAULT_L2 (512u * 1024)
#define DEFAULT_L3_PER_CORE (2u * 1024 * 1024)

typedef struct {
    size_t size;
    unsigned sharing; /* logical CPUs sharing it (0: unknown) */
} cache_level;

#if defined(FM_X86)
/* CPUID's deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD,
 * with topology extensions), one sub-leaf per cache. */
static int x86_caches(cache_level out[4]) {
    unsigned r[4];
    cpuid(0, 0, r);
    const int intel_leaf4 = r[0] >= 4;
    cpuid(0x80000000u, 0, r);
    const int amd_ok = r[0] >= 0x8000001Du && (cpuid(0x80000001u, 0, r), BIT(r[2], 22));
    const unsigned leaf = amd_ok ? 0x8000001Du : 4;
    if (!amd_ok && !intel_leaf4) return 0;
    int found = 0;
    for (unsigned sub = 0; sub < 16; sub++) {
        cpuid(leaf, sub, r);
        const unsigned type = r[0] & 0x1f, level = (r[0] >> 5) & 7;
        if (type == 0) break;
        if (type == 2 || level < 1 || level > 3) continue; /* instruction caches */
        const size_t ways = ((r[1] >> 22) & 0x3ff) + 1, parts = ((r[1] >> 12) & 0x3ff) + 1;
        const size_t line = (r[1] & 0xfff) + 1, sets = (size_t)r[2] + 1;
        out[level].size = ways * parts * line * sets;
        out[level].sharing = ((r[0] >> 14) & 0xfff) + 1;
        found = 1;
    }
    return found;
}
#endif

#if defined(__linux__)
/* Counts the CPUs of a sysfs list such as "0-3,8-11". */
static unsigned count_cpu_list(const char *s) {
    unsigned n = 0;
    while (*s) {
        char *end;
        const long a = strtol(s, &end, 10);
        if (end == s) break;
        long b = a;
        if (*end == '-') {
            s = end + 1;
            b = strtol(s, &end, 10);
            if (end == s) break;
        }
        if (b >= a) n += (unsigned)(b - a + 1);
        s = *end == ',' ? end + 1 : end;
        if (*end != ',') break;
    }
    return n;
}

static int read_line(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    const int ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    return ok;
}

static int sysfs_caches(cache_level out[4]) {
    int found = 0;
    for (int i = 0; i < 16; i++) {
        char path[96], buf[128];
        const char *dir = "/sys/devices/system/cpu/cpu0/cache/index";
        snprintf(path, sizeof path, "%s%d/level", dir, i);
        if (!read_line(path, buf, sizeof buf)) break;
        const int level = atoi(buf);
        snprintf(path, sizeof path, "%s%d/type", dir, i);
        if (level < 1 || level > 3 || !read_line(path, buf, sizeof buf) ||
            strncmp(buf, "Instruction", 11) == 0)
            continue;
        snprintf(path, sizeof path, "%s%d/size", dir, i);
        if (!read_line(path, buf, sizeof buf)) continue;
        char *unit;
        size_t size = (size_t)strtoul(buf, &unit, 10);
        if (*unit == 'K') size *= 1024;
        else if (*unit == 'M') size *= 1024 * 1024;
        if (size == 0) continue;
        out[level].size = size;
        snprintf(path, sizeof path, "%s%d/shared_cpu_list", dir, i);
        out[level].sharing = read_line(path, buf, sizeof buf) ? count_cpu_list(buf) : 0;
        found = 1;
    }
    return found;
}
#endif

fm_cache_sizes fm_cpu_caches(void) {
    cache_level c[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    int found = 0;
#if defined(FM_X86)
    found = x86_caches(c);
#endif
#if defined(__linux__)
    if (!found) found = sysfs_caches(c);
#endif
    (void)found;
    fm_cache_sizes s;
    s.known = (c[1].size ? 1 : 0) | (c[2].size ? 2 : 0) | (c[3].size ? 4 : 0);
    s.l1d = c[1].size ? c[1].size : DEFAULT_L1D;
    s.l2 = c[2].size ? c[2].size : DEFAULT_L2;
    /* The logical CPUs sharing L1d are one core's hardware threads. */
    const unsigned per_core = c[1].sharing ? c[1].sharing : 1;
    const unsigned cores_on_l3 = c[3].sharing >= per_core ? c[3].sharing / per_core : 1;
    s.l3 = c[3].size ? c[3].size : DEFAULT_L3_PER_CORE;
    s.l3_per_core = c[3].size ? c[3].size / (cores_on_l3 ? cores_on_l3 : 1) : DEFAULT_L3_PER_CORE;
    return s;
}
