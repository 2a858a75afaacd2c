/* Portable stand-ins for the AVX-512, AVX-VNNI and AMX intrinsics the kernels use, for the test
 * build FASTMLP_EMULATE_ISA (csrc/simd.h): SIMDe (Debian's libsimde-dev) for AVX-512,
 * a few of its gaps filled here, and AMX written out from the instructions' definitions
 * in Intel's SDM. An emulated build checks the kernels' loops, layouts and tails on any
 * AVX2 machine; it says nothing about their speed, and it must never ship
 * (fastmlp.build_info()["emulated_isa"] says so). */
#ifndef FASTMLP_ISA_EMULATION_H
#define FASTMLP_ISA_EMULATION_H

#include <stdint.h>
#include <string.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

/* -- AVX-512 intrinsics SIMDe 0.7 lacks: masked loads touch only the lanes asked for ---- */

static inline simde__m512 fm_emu_maskz_loadu_ps(simde__mmask16 m, const void *p) {
    float v[16] = {0};
    for (int i = 0; i < 16; i++)
        if (m >> i & 1) v[i] = ((const float *)p)[i];
    return simde_mm512_loadu_ps(v);
}
static inline simde__m512d fm_emu_maskz_loadu_pd(simde__mmask8 m, const void *p) {
    double v[8] = {0};
    for (int i = 0; i < 8; i++)
        if (m >> i & 1) v[i] = ((const double *)p)[i];
    return simde_mm512_loadu_pd(v);
}
static inline void fm_emu_mask_storeu_ps(void *p, simde__mmask16 m, simde__m512 a) {
    float v[16];
    simde_mm512_storeu_ps(v, a);
    for (int i = 0; i < 16; i++)
        if (m >> i & 1) ((float *)p)[i] = v[i];
}
static inline void fm_emu_mask_storeu_pd(void *p, simde__mmask8 m, simde__m512d a) {
    double v[8];
    simde_mm512_storeu_pd(v, a);
    for (int i = 0; i < 8; i++)
        if (m >> i & 1) ((double *)p)[i] = v[i];
}
static inline simde__m512 fm_emu_i32gather_ps(simde__m512i idx, const void *base, int scale) {
    int32_t i[16];
    float v[16];
    simde_mm512_storeu_si512(i, idx);
    for (int l = 0; l < 16; l++) memcpy(&v[l], (const char *)base + (long)i[l] * scale, 4);
    return simde_mm512_loadu_ps(v);
}
static inline simde__m512d fm_emu_i32gather_pd(simde__m256i idx, const void *base, int scale) {
    int32_t i[8];
    double v[8];
    simde_mm256_storeu_si256(i, idx);
    for (int l = 0; l < 8; l++) memcpy(&v[l], (const char *)base + (long)i[l] * scale, 8);
    return simde_mm512_loadu_pd(v);
}
/* vcvtps2dq: to the nearest integer, ties to even (the default rounding mode). */
static inline simde__m512i fm_emu_cvtps_epi32(simde__m512 a) {
    float v[16];
    int32_t q[16];
    simde_mm512_storeu_ps(v, a);
    for (int l = 0; l < 16; l++) q[l] = (int32_t)__builtin_rintf(v[l]);
    return simde_mm512_loadu_si512(q);
}
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32 fm_emu_cvtps_epi32
/* vcvtne2ps2bf16: to bfloat16, nearest even; subnormal inputs read as zero, NaN quieted;
 * lo fills the lower 16 lanes. */
static inline simde__m512bh fm_emu_cvtne2ps_pbh(simde__m512 hi, simde__m512 lo) {
    float v[32];
    uint16_t r[32];
    simde_mm512_storeu_ps(v, lo);
    simde_mm512_storeu_ps(v + 16, hi);
    for (int l = 0; l < 32; l++) {
        uint32_t u;
        memcpy(&u, &v[l], sizeof u);
        if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
        else if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;
        else u += 0x7fffu + (u >> 16 & 1u);
        r[l] = (uint16_t)(u >> 16);
    }
    simde__m512bh out;
    memcpy(&out, r, sizeof out);
    return out;
}
#undef _mm512_cvtne2ps_pbh
#define _mm512_cvtne2ps_pbh fm_emu_cvtne2ps_pbh
#undef _mm512_i32gather_ps
#undef _mm512_i32gather_pd
#define _mm512_i32gather_ps(idx, base, scale) fm_emu_i32gather_ps(idx, base, scale)
#define _mm512_i32gather_pd(idx, base, scale) fm_emu_i32gather_pd(idx, base, scale)
/* AVX-VNNI's spelling of the 256-bit vpdpbusd (AVX512-VNNI's has no _avx). */
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32(src, a, b)
#undef _mm512_maskz_loadu_ps
#undef _mm512_maskz_loadu_pd
#undef _mm512_mask_storeu_ps
#undef _mm512_mask_storeu_pd
#define _mm512_maskz_loadu_ps fm_emu_maskz_loadu_ps
#define _mm512_maskz_loadu_pd fm_emu_maskz_loadu_pd
#define _mm512_mask_storeu_ps fm_emu_mask_storeu_ps
#define _mm512_mask_storeu_pd fm_emu_mask_storeu_pd

/* -- AMX: eight tiles of up to 16 rows x 64 bytes, per thread -------------------------- */

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} fm_emu_tilecfg;

typedef struct {
    int configured;
    fm_emu_tilecfg cfg;
    unsigned char data[8][16][64];
} fm_emu_tiles;

static _Thread_local fm_emu_tiles fm_emu_amx;

static inline void fm_emu_tile_check(int t) {
    if (!fm_emu_amx.configured || t < 0 || t > 7 || fm_emu_amx.cfg.rows[t] > 16 ||
        fm_emu_amx.cfg.colsb[t] > 64)
        __builtin_trap(); /* the hardware raises #UD: a kernel bug */
}

static inline void fm_emu_tile_loadconfig(const void *p) {
    memcpy(&fm_emu_amx.cfg, p, sizeof fm_emu_amx.cfg);
    if (fm_emu_amx.cfg.palette != 1) __builtin_trap();
    memset(fm_emu_amx.data, 0, sizeof fm_emu_amx.data);
    fm_emu_amx.configured = 1;
}
static inline void fm_emu_tile_release(void) { memset(&fm_emu_amx, 0, sizeof fm_emu_amx); }
static inline void fm_emu_tile_zero(int t) {
    fm_emu_tile_check(t);
    memset(fm_emu_amx.data[t], 0, sizeof fm_emu_amx.data[t]);
}
static inline void fm_emu_tile_loadd(int t, const void *base, long stride) {
    fm_emu_tile_check(t);
    memset(fm_emu_amx.data[t], 0, sizeof fm_emu_amx.data[t]);
    for (int r = 0; r < fm_emu_amx.cfg.rows[t]; r++)
        memcpy(fm_emu_amx.data[t][r], (const char *)base + r * stride, fm_emu_amx.cfg.colsb[t]);
}
static inline void fm_emu_tile_stored(int t, void *base, long stride) {
    fm_emu_tile_check(t);
    for (int r = 0; r < fm_emu_amx.cfg.rows[t]; r++)
        memcpy((char *)base + r * stride, fm_emu_amx.data[t][r], fm_emu_amx.cfg.colsb[t]);
}

/* The SDM's shapes: dst is M x N dwords, a is M x K dwords, b is K x N dwords. */
static inline void fm_emu_tile_shapes(int c, int a, int b, int *m, int *k, int *n) {
    fm_emu_tile_check(c);
    fm_emu_tile_check(a);
    fm_emu_tile_check(b);
    const fm_emu_tilecfg *cfg = &fm_emu_amx.cfg;
    *m = cfg->rows[c], *k = cfg->colsb[a] / 4, *n = cfg->colsb[c] / 4;
    if (cfg->rows[a] != *m || cfg->rows[b] != *k || cfg->colsb[b] != cfg->colsb[c])
        __builtin_trap();
}

/* bfloat16 as float, subnormals read as zero (the instruction's DAZ). */
static inline float fm_emu_bf16(uint16_t bits) {
    if ((bits & 0x7f80u) == 0) bits &= 0x8000u;
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline float fm_emu_flush(float f) { /* FTZ: a subnormal result becomes zero */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
    memcpy(&f, &u, sizeof u);
    return f;
}

/* The multiplies touch only the thread's tiles, never a caller's memory: left out of the
 * sanitizers' instrumentation (and so much quicker under them). */
#if defined(__GNUC__)
#define FM_EMU_HOT __attribute__((no_sanitize("address", "undefined")))
#else
#define FM_EMU_HOT
#endif

/* TDPBF16PS: c[m][n] += a[m][2k] * b[k][2n] then += a[m][2k+1] * b[k][2n+1], k in order. */
FM_EMU_HOT static inline void fm_emu_tile_dpbf16ps(int c, int a, int b) {
    int M, K, N;
    fm_emu_tile_shapes(c, a, b, &M, &K, &N);
    for (int m = 0; m < M; m++) {
        float acc[16], x[32], w[32];
        memcpy(acc, fm_emu_amx.data[c][m], sizeof acc);
        for (int k = 0; k < K; k++) {
            uint16_t xb[2], wb[32];
            memcpy(xb, &fm_emu_amx.data[a][m][4 * k], sizeof xb);
            memcpy(wb, fm_emu_amx.data[b][k], sizeof wb);
            x[0] = fm_emu_bf16(xb[0]), x[1] = fm_emu_bf16(xb[1]);
            for (int i = 0; i < 2 * N; i++) w[i] = fm_emu_bf16(wb[i]);
            for (int h = 0; h < 2; h++)
                for (int n = 0; n < N; n++) acc[n] = fm_emu_flush(acc[n] + x[h] * w[2 * n + h]);
        }
        memcpy(fm_emu_amx.data[c][m], acc, sizeof acc);
    }
}

/* TDPBSSD: c[m][n] += the four signed byte products of a[m][k] and b[k][n], wrapping. */
FM_EMU_HOT static inline void fm_emu_tile_dpbssd(int c, int a, int b) {
    int M, K, N;
    fm_emu_tile_shapes(c, a, b, &M, &K, &N);
    for (int m = 0; m < M; m++) {
        uint32_t acc[16];
        memcpy(acc, fm_emu_amx.data[c][m], sizeof acc);
        for (int k = 0; k < K; k++) {
            const int8_t *x = (const int8_t *)&fm_emu_amx.data[a][m][4 * k];
            const int8_t *w = (const int8_t *)fm_emu_amx.data[b][k];
            for (int n = 0; n < N; n++)
                for (int h = 0; h < 4; h++)
                    acc[n] += (uint32_t)((int32_t)x[h] * (int32_t)w[4 * n + h]);
        }
        memcpy(fm_emu_amx.data[c][m], acc, sizeof acc);
    }
}

#undef _tile_loadconfig
#undef _tile_release
#undef _tile_zero
#undef _tile_loadd
#undef _tile_stored
#undef _tile_dpbf16ps
#undef _tile_dpbssd
#define _tile_loadconfig fm_emu_tile_loadconfig
#define _tile_release fm_emu_tile_release
#define _tile_zero fm_emu_tile_zero
#define _tile_loadd fm_emu_tile_loadd
#define _tile_stored fm_emu_tile_stored
#define _tile_dpbf16ps fm_emu_tile_dpbf16ps
#define _tile_dpbssd fm_emu_tile_dpbssd

#endif
