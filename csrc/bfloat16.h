/* bfloat16 values as the reduced-precision kernels round and read them. */
#ifndef FASTMLP_BFLOAT16_H
#define FASTMLP_BFLOAT16_H

#include <stdint.h>
#include <string.h>

/* x rounded to the nearest bfloat16 (ties to even), as a float; NaN stays NaN. */
static inline float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x; /* NaN: keep it (and quiet) */
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof u);
    return x;
}

/* The bit pattern of round_bf16(x); a NaN quieted, as vcvtneps2bf16 does, since the top
 * half of a NaN whose payload lies in its low bits alone would read as inf. */
static inline uint16_t bf16_bits(float x) {
    const float r = round_bf16(x);
    uint32_t u;
    memcpy(&u, &r, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;
    return (uint16_t)(u >> 16);
}

/* As vcvtne2ps2bf16 rounds: bf16_bits, but a subnormal x becomes a zero of its sign (the
 * instruction treats subnormal inputs as zero). Where the products are summed by
 * vdpbf16ps or tdpbf16ps, which read subnormal bfloat16 inputs as zero, only the few
 * values just below 2^-126 that bf16_bits rounds up to it come out otherwise. */
static inline uint16_t bf16_bits_flushed(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)(u >> 16 & 0x8000u);
    return bf16_bits(x);
}

static inline float bf16_value(uint16_t bits) {
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
