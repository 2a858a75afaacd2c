/* Packing of row-major weights into the column panels the kernels read. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign under -std=c11 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastmlp.h"

#define FM_DEFINE_PACK(SFX, REAL, NR)                                                    \
    size_t fm_packed_size_##SFX(int n_in, int n_out) {                                  \
        size_t n_panels = ((size_t)n_out + (NR)-1) / (NR);                               \
        return n_panels * (size_t)n_in * (NR);                                           \
    }                                                                                    \
    void fm_pack_##SFX(const REAL *w, int n_in, int n_out, REAL *dst) {                 \
        size_t n_panels = ((size_t)n_out + (NR)-1) / (NR);                               \
        for (size_t p = 0; p < n_panels; p++) {                                          \
            size_t first = p * (NR);                                                     \
            size_t width = (size_t)n_out - first < (NR) ? (size_t)n_out - first : (NR);  \
            REAL *panel = dst + p * (size_t)n_in * (NR);                                 \
            for (size_t k = 0; k < (size_t)n_in; k++) {                                  \
                REAL *row = panel + k * (NR);                                            \
                memcpy(row, w + k * (size_t)n_out + first, width * sizeof(REAL));        \
                memset(row + width, 0, ((NR)-width) * sizeof(REAL));                     \
            }                                                                            \
        }                                                                                \
    }

FM_DEFINE_PACK(f32, float, FM_NR_F32)

size_t fm_reduced_panel_bytes(int precision, int n_in) {
    const size_t nr = FM_NR_F32;
    return precision == FM_PRECISION_INT8 ? nr * 4 + fm_int8_quads(n_in) * 4 * nr
                                          : fm_bf16_pairs(n_in) * 2 * nr * 2;
}

size_t fm_packed_bytes_reduced(int precision, int n_in, int n_out) {
    const size_t n_panels = ((size_t)n_out + FM_NR_F32 - 1) / FM_NR_F32;
    return n_panels * fm_reduced_panel_bytes(precision, n_in);
}

void fm_pack_bf16(const unsigned short *w, int n_in, int n_out, void *dst) {
    const size_t nr = FM_NR_F32, panel = fm_reduced_panel_bytes(FM_PRECISION_BF16, n_in) / 2;
    unsigned short *d = dst;
    memset(d, 0, fm_packed_bytes_reduced(FM_PRECISION_BF16, n_in, n_out));
    for (size_t k = 0; k < (size_t)n_in; k++)
        for (size_t j = 0; j < (size_t)n_out; j++)
            d[j / nr * panel + k / 2 * 2 * nr + 2 * (j % nr) + k % 2] = w[k * (size_t)n_out + j];
}

void fm_pack_int8(const signed char *w, int n_in, int n_out, void *dst) {
    const size_t nr = FM_NR_F32, panel = fm_reduced_panel_bytes(FM_PRECISION_INT8, n_in);
    unsigned char *d = dst;
    memset(d, 0, fm_packed_bytes_reduced(FM_PRECISION_INT8, n_in, n_out));
    for (size_t j = 0; j < (size_t)n_out; j++) {
        unsigned char *p = d + j / nr * panel;
        int32_t sum = 0; /* at most 127 * FM_MAX_INT8_INPUTS in magnitude */
        for (size_t k = 0; k < (size_t)n_in; k++) {
            const signed char v = w[k * (size_t)n_out + j];
            p[4 * nr + k / 4 * 4 * nr + 4 * (j % nr) + k % 4] = (unsigned char)v;
            sum += v;
        }
        memcpy(p + 4 * (j % nr), &sum, sizeof sum);
    }
}

FM_DEFINE_PACK(f64, double, FM_NR_F64)

_Static_assert(FM_PANEL_BYTES % FM_ALIGN == 0 || FM_ALIGN % FM_PANEL_BYTES == 0,
               "panels start on FM_ALIGN boundaries");
_Static_assert((FM_ALIGN & (FM_ALIGN - 1)) == 0 && FM_ALIGN % sizeof(void *) == 0,
               "FM_ALIGN must be a power of two and a multiple of sizeof(void *)");

/* C11's aligned_alloc is missing from MSVC and from macOS before 10.15, so:
 * _aligned_malloc on Windows, posix_memalign elsewhere. */
#if defined(_WIN32)
#include <malloc.h>
#endif

void *fm_aligned_alloc(size_t bytes) {
    if (bytes == 0) return NULL;
    bytes = (bytes + FM_ALIGN - 1) / FM_ALIGN * FM_ALIGN; /* whole cache lines */
#if defined(_WIN32)
    return _aligned_malloc(bytes, FM_ALIGN);
#else
    void *p = NULL;
    return posix_memalign(&p, FM_ALIGN, bytes) == 0 ? p : NULL;
#endif
}

void fm_aligned_free(void *p) {
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}
