/* Vector primitives for the dense kernel, for the instruction set FM_VEC_ISA and
 * the element type REAL (selected by FM_REAL_IS_DOUBLE). Defines V (vector),
 * VL (lanes), VMASK (a lane mask) and the V_* operations; the generic build
 * defines FM_SCALAR_KERNEL instead and the kernel uses plain C loops. The
 * micro-kernel's rows (FM_MR) and one-row panels (FM_GEMV_PANELS) come from
 * kernels.def, through isa.h. */
#include "isa.h"

#undef V
#undef VL
#undef VMASK
#undef V_ZERO
#undef V_SET1
#undef V_LOAD
#undef V_LOADU
#undef V_STOREU
#undef V_MASK
#undef V_MLOAD
#undef V_MSTORE
#undef V_FMA
#undef V_ADD
#undef V_MUL
#undef V_RELU
#undef V_LEAKY
#undef VIDX
#undef V_ROW_INDEX
#undef V_GATHER
#undef VPERM
#undef V_PERM_INDEX
#undef V_PERMUTE
#undef V_MASK_BITS
#undef V_PERMUTE2
#undef V_SWAP_LOWER
#undef V_SWAP_UPPER
#undef FM_SCALAR_KERNEL

#if FM_VEC_ISA == FM_ISA_AVX512
#include "simd.h"
#if FM_REAL_IS_DOUBLE
#define V __m512d
#define VL 8
#define VMASK __mmask8
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(s) _mm512_set1_pd(s)
#define V_LOAD(p) _mm512_load_pd(p)
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_STOREU(p, v) _mm512_storeu_pd(p, v)
#define V_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define V_MLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define V_MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
/* max(0, z) returns its second operand when either is NaN, so NaN stays NaN. */
#define V_RELU(z) _mm512_max_pd(_mm512_setzero_pd(), z)
#define V_LEAKY(z, s) \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(z, _mm512_setzero_pd(), _CMP_GT_OQ), _mm512_mul_pd(z, s), z)
/* Element offsets of VL rows ld apart, the rows past `last` repeating it; a gather by them. */
#define VIDX __m256i
#define V_ROW_INDEX(ld, last) \
    _mm256_mullo_epi32(_mm256_min_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(last)), _mm256_set1_epi32(ld))
#define V_GATHER(p, idx) _mm512_i32gather_pd(idx, p, 8)
/* A permutation of one vector's lanes, lane L taking lane l[L] (l: VL ints), and a lane
 * mask of any lanes (bit L: lane L). */
#define VPERM __m512i
#define V_PERM_INDEX(l) _mm512_set_epi64((l)[7], (l)[6], (l)[5], (l)[4], (l)[3], (l)[2], (l)[1], (l)[0])
#define V_PERMUTE(v, idx) _mm512_permutexvar_pd(idx, v)
#define V_MASK_BITS(bits) ((__mmask8)(bits))
/* Lane L of a two-vector permute: lane idx[L] of a, or of b when idx[L] >= VL. */
#define V_PERMUTE2(a, idx, b) _mm512_permutex2var_pd(a, idx, b)
#else
#define V __m512
#define VL 16
#define VMASK __mmask16
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(s) _mm512_set1_ps(s)
#define V_LOAD(p) _mm512_load_ps(p)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define V_MLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define V_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_RELU(z) _mm512_max_ps(_mm512_setzero_ps(), z)
#define V_LEAKY(z, s) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_mul_ps(z, s), z)
#define VIDX __m512i
#define V_ROW_INDEX(ld, last)                                                                      \
    _mm512_mullo_epi32(_mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), \
                                        _mm512_set1_epi32(last)),                                  \
                       _mm512_set1_epi32(ld))
#define V_GATHER(p, idx) _mm512_i32gather_ps(idx, p, 4)
#define VPERM __m512i
#define V_PERM_INDEX(l) _mm512_loadu_si512((const void *)(l))
#define V_PERMUTE(v, idx) _mm512_permutexvar_ps(idx, v)
#define V_MASK_BITS(bits) ((__mmask16)(bits))
#define V_PERMUTE2(a, idx, b) _mm512_permutex2var_ps(a, idx, b)
#endif

#elif FM_VEC_ISA == FM_ISA_AVX2
#include "simd.h"
#if FM_REAL_IS_DOUBLE
#define V __m256d
#define VL 4
#define VMASK __m256i
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(s) _mm256_set1_pd(s)
#define V_LOAD(p) _mm256_load_pd(p)
#define V_LOADU(p) _mm256_loadu_pd(p)
#define V_STOREU(p, v) _mm256_storeu_pd(p, v)
#define V_MASK(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
#define V_MLOAD(p, m) _mm256_maskload_pd(p, m)
#define V_MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define V_ADD(a, b) _mm256_add_pd(a, b)
#define V_MUL(a, b) _mm256_mul_pd(a, b)
#define V_RELU(z) _mm256_max_pd(_mm256_setzero_pd(), z)
#define V_LEAKY(z, s) \
    _mm256_blendv_pd(_mm256_mul_pd(z, s), z, _mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_GT_OQ))
#define VIDX __m128i
#define V_ROW_INDEX(ld, last) \
    _mm_mullo_epi32(_mm_min_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(last)), _mm_set1_epi32(ld))
#define V_GATHER(p, idx) _mm256_i32gather_pd(p, idx, 8)
/* AVX2 permutes doubles as pairs of 32-bit lanes. */
#define VPERM __m256i
#define V_PERM_INDEX(l)                                                                        \
    _mm256_setr_epi32(2 * (l)[0], 2 * (l)[0] + 1, 2 * (l)[1], 2 * (l)[1] + 1, 2 * (l)[2],        \
                      2 * (l)[2] + 1, 2 * (l)[3], 2 * (l)[3] + 1)
#define V_PERMUTE(v, idx) _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), idx))
#define V_MASK_BITS(bits)                                                                      \
    _mm256_cmpgt_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), _mm256_setr_epi64x(1, 2, 4, 8)), \
                       _mm256_setzero_si256())
/* One round of an in-register transpose (h = 2, 1): lane L of the lower vector is lane L of
 * a where L & h == 0, else lane L - h of b; of the upper, lane L + h of a, else lane L of b. */
#define V_SWAP_LOWER(a, b, h)                                                                  \
    ((h) == 2 ? _mm256_permute2f128_pd(a, b, 0x20) : _mm256_unpacklo_pd(a, b))
#define V_SWAP_UPPER(a, b, h)                                                                  \
    ((h) == 2 ? _mm256_permute2f128_pd(a, b, 0x31) : _mm256_unpackhi_pd(a, b))
#else
#define V __m256
#define VL 8
#define VMASK __m256i
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(s) _mm256_set1_ps(s)
#define V_LOAD(p) _mm256_load_ps(p)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps(p, v)
#define V_MASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_MLOAD(p, m) _mm256_maskload_ps(p, m)
#define V_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_RELU(z) _mm256_max_ps(_mm256_setzero_ps(), z)
#define V_LEAKY(z, s) \
    _mm256_blendv_ps(_mm256_mul_ps(z, s), z, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ))
#define VIDX __m256i
#define V_ROW_INDEX(ld, last) \
    _mm256_mullo_epi32(_mm256_min_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(last)), _mm256_set1_epi32(ld))
#define V_GATHER(p, idx) _mm256_i32gather_ps(p, idx, 4)
#define VPERM __m256i
#define V_PERM_INDEX(l) _mm256_loadu_si256((const __m256i *)(l))
#define V_PERMUTE(v, idx) _mm256_permutevar8x32_ps(v, idx)
#define V_MASK_BITS(bits)                                                                      \
    _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_set1_epi32(bits),                               \
                                        _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)),         \
                       _mm256_setzero_si256())
/* As for double (h = 4, 2, 1); h = 1 blends a with b's even lanes duplicated, and b with a's
 * odd lanes duplicated. */
#define V_SWAP_LOWER(a, b, h)                                                                  \
    ((h) == 4   ? _mm256_permute2f128_ps(a, b, 0x20)                                           \
     : (h) == 2 ? _mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0))                             \
                : _mm256_blend_ps(a, _mm256_moveldup_ps(b), 0xAA))
#define V_SWAP_UPPER(a, b, h)                                                                  \
    ((h) == 4   ? _mm256_permute2f128_ps(a, b, 0x31)                                           \
     : (h) == 2 ? _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2))                             \
                : _mm256_blend_ps(_mm256_movehdup_ps(a), b, 0xAA))
#endif

#else
#define FM_SCALAR_KERNEL 1
#endif

#if !defined(FM_SCALAR_KERNEL)
/* A packed panel (fastmlp.h) holds whole vectors, and the lane mask of a
 * partial vector fits in an unsigned int. */
_Static_assert(FM_PANEL_BYTES % sizeof(V) == 0, "a weight panel must hold whole vectors");
_Static_assert(VL <= 16, "V_MASK builds lane masks in an unsigned int");
#endif
_Static_assert(FM_MR >= 1 && FM_GEMV_PANELS >= 1, "kernels.def: mr and gemv are positive");
_Static_assert(FM_NARROW >= 0 && FM_NARROW <= 16, "kernels.def: narrow is 0 .. 16");
