/* What the CPU and the operating system support, read once (cpu.c).
 *
 * A feature bit is set only when the CPU has the instructions AND the OS saves
 * the registers they use (XGETBV), so a set bit means "safe to run". AMX needs,
 * on Linux, one more step before first use: fm_cpu_request_amx(). */
#ifndef FASTMLP_CPU_H
#define FASTMLP_CPU_H

#include <stddef.h>
#include <stdint.h>

enum {
    FM_CPU_SSE2 = 1u << 0,
    FM_CPU_AVX = 1u << 1,
    FM_CPU_AVX2 = 1u << 2,
    FM_CPU_FMA = 1u << 3,
    FM_CPU_F16C = 1u << 4,
    FM_CPU_AVX512F = 1u << 5,
    FM_CPU_AVX512DQ = 1u << 6,
    FM_CPU_AVX512BW = 1u << 7,
    FM_CPU_AVX512VL = 1u << 8,
    FM_CPU_AVX512_VNNI = 1u << 9,
    FM_CPU_AVX512_BF16 = 1u << 10,
    FM_CPU_AVX_VNNI = 1u << 11,
    FM_CPU_AMX_TILE = 1u << 12,
    FM_CPU_AMX_BF16 = 1u << 13,
    FM_CPU_AMX_INT8 = 1u << 14,
    FM_CPU_NEON = 1u << 15, /* arm64: always there */
    FM_CPU_N_FEATURES = 16
};

/* The FM_CPU_* bits this machine may use (computed once; thread-safe). */
uint32_t fm_cpu_features(void);
/* The name of one feature bit ("avx2", "amx-tile", ...), NULL for an unknown bit. */
const char *fm_cpu_feature_name(uint32_t bit);

/* Asks the OS for permission to use the AMX tile data registers (Linux's
 * arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); an AMX kernel calls
 * it before its first tile instruction. Returns 0 when AMX may be used, -1 when
 * the CPU lacks it or the OS refuses (then AMX must not be used). */
int fm_cpu_request_amx(void);

/* Data cache sizes in bytes, for planning tiles: l1d and l2 of one core, l3
 * of the whole cache and l3_per_core its share per physical core (the size
 * divided among the cores that share it). Unknown sizes get safe defaults
 * (32 KiB, 512 KiB, 2 MiB per core), and `known` says which were measured. */
typedef struct {
    size_t l1d, l2, l3, l3_per_core;
    int known; /* bit 0: l1d, bit 1: l2, bit 2: l3 */
} fm_cache_sizes;

fm_cache_sizes fm_cpu_caches(void);

#endif
