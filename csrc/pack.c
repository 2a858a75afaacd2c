/* Packing of row-major weights into the column panels the kernels read. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign under -std=c11 */
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

size_t fm_packed_size_reduced(int n_in, int n_out) {
    size_t n_panels = ((size_t)n_out + FM_NR_F32 - 1) / FM_NR_F32;
    return n_panels * (((size_t)n_in + 1) / 2) * 2 * FM_NR_F32;
}

#define FM_DEFINE_PACK_PAIRS(SFX, T)                                                      \
    void fm_pack_##SFX(const T *w, int n_in, int n_out, T *dst) {                        \
        const size_t nr = FM_NR_F32, pairs = ((size_t)n_in + 1) / 2;                     \
        memset(dst, 0, fm_packed_size_reduced(n_in, n_out) * sizeof(T));                 \
        for (size_t k = 0; k < (size_t)n_in; k++)                                        \
            for (size_t j = 0; j < (size_t)n_out; j++) {                                 \
                const size_t p = j / nr, c = j % nr;                                     \
                dst[p * pairs * 2 * nr + (k / 2) * 2 * nr + 2 * c + k % 2] =             \
                    w[k * (size_t)n_out + j];                                            \
            }                                                                            \
    }

FM_DEFINE_PACK_PAIRS(bf16, unsigned short)
FM_DEFINE_PACK_PAIRS(int8, signed char)
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
