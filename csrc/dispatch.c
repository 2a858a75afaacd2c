/* Run-time choice of the kernel variant, from what the CPU and OS support. */
#include <string.h>

#include "fastmlp.h"
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define FM_HAVE_X86_KERNELS 1
#endif
#include "kernel_table.h"

#define FM_TABLE(sfx)                                                                 \
    {                                                                                 \
        fm_dense_f32_##sfx, fm_dense_f64_##sfx, fm_dense_cols_f32_##sfx,               \
            fm_dense_cols_f64_##sfx, fm_activate_f32_##sfx, fm_activate_f64_##sfx      \
    }

static const fm_kernel_table tables[FM_N_KERNELS] = {
    FM_TABLE(generic),
#if defined(FM_HAVE_X86_KERNELS)
    FM_TABLE(avx2),
    FM_TABLE(avx512),
#endif
};

static const char *const names[FM_N_KERNELS] = {"generic", "avx2", "avx512"};

/* Written once, by fm_select_kernel at import, before any call can read it. */
static int active = FM_KERNEL_GENERIC;

const char *fm_kernel_name(int kernel) {
    return kernel >= 0 && kernel < FM_N_KERNELS ? names[kernel] : "unknown";
}

int fm_kernel_supported(int kernel) {
    switch (kernel) {
    case FM_KERNEL_GENERIC:
        return 1;
#if defined(FM_HAVE_X86_KERNELS) && defined(__GNUC__)
    /* libgcc checks the CPUID bits and that the OS saves the wide registers (XGETBV). */
    case FM_KERNEL_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FM_KERNEL_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#endif
    default:
        return 0;
    }
}

int fm_select_kernel(const char *name) {
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
        for (int k = FM_N_KERNELS - 1; k >= 0; k--)
            if (fm_kernel_supported(k)) {
                active = k;
                return 0;
            }
        return -2;
    }
    for (int k = 0; k < FM_N_KERNELS; k++)
        if (strcmp(name, names[k]) == 0) {
            if (!fm_kernel_supported(k)) return -2;
            active = k;
            return 0;
        }
    return -1;
}

int fm_active_kernel(void) { return active; }

const fm_kernel_table *fm_kernels(void) { return &tables[active]; }

void fm_dense_f32(const fm_layer *layer, const float *x, size_t ldx, size_t rows, float *out,
                  size_t ldo, int apply_activation) {
    tables[active].dense_f32(layer, x, ldx, rows, out, ldo, apply_activation);
}

void fm_dense_f64(const fm_layer *layer, const double *x, size_t ldx, size_t rows, double *out,
                  size_t ldo, int apply_activation) {
    tables[active].dense_f64(layer, x, ldx, rows, out, ldo, apply_activation);
}

void fm_activate_f32(fm_activation act, float *z, size_t rows, size_t cols, size_t ld) {
    tables[active].activate_f32(act, z, rows, cols, ld);
}

void fm_activate_f64(fm_activation act, double *z, size_t rows, size_t cols, size_t ld) {
    tables[active].activate_f64(act, z, rows, cols, ld);
}
