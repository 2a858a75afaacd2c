/* Packing of row-major weights into the column panels the kernels read. */
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
FM_DEFINE_PACK(f64, double, FM_NR_F64)

void *fm_aligned_alloc(size_t bytes) {
    if (bytes == 0) return NULL;
    return aligned_alloc(FM_ALIGN, (bytes + FM_ALIGN - 1) / FM_ALIGN * FM_ALIGN);
}

void fm_aligned_free(void *p) { free(p); }
