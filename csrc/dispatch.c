/* Run-time choice of the kernel variant (kernels.def), from what the CPU and
 * OS support (cpu.c). */
#include <string.h>

#include "cpu.h"
#include "fastmlp.h"
#include "forward.h"
#include "kernel_table.h"
#include "portable.h"

/* A variant's functions where it is built for this architecture, else NULL. */
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FM_IF_BUILT_X86(f) f
#else
#define FM_IF_BUILT_X86(f) NULL
#endif
#define FM_IF_BUILT_ANY(f) f

#define FM_TABLE_ROW(sfx, id, arch, gcc, msvc, features, mr, gemv, narrow, vec)               \
    {FM_IF_BUILT_##arch(fm_dense_f32_##sfx),       FM_IF_BUILT_##arch(fm_dense_f64_##sfx),    \
     FM_IF_BUILT_##arch(fm_dense_cols_f32_##sfx),  FM_IF_BUILT_##arch(fm_dense_cols_f64_##sfx), \
     FM_IF_BUILT_##arch(fm_activate_f32_##sfx),    FM_IF_BUILT_##arch(fm_activate_f64_##sfx),   \
     FM_IF_BUILT_##arch(fm_dense_reduced_cols_##sfx), mr, narrow},
static const fm_kernel_table tables[FM_N_KERNELS] = {FM_KERNELS(FM_TABLE_ROW)};

#define FM_NAME_ROW(name, id, arch, gcc, msvc, features, mr, gemv, narrow, vec) #name,
static const char *const names[FM_N_KERNELS] = {FM_KERNELS(FM_NAME_ROW)};

#define FM_FEATURES_ROW(name, id, arch, gcc, msvc, features, mr, gemv, narrow, vec) \
    (uint32_t)(features),
static const uint32_t needs[FM_N_KERNELS] = {FM_KERNELS(FM_FEATURES_ROW)};

/* The table's invariants: ids are the rows' positions (the enum in fastmlp.h
 * and the arrays here are indexed by them), and every mr divides the forward
 * pass's tile quantum. */
enum {
#define FM_POSITION_ROW(name, id, arch, gcc, msvc, features, mr, gemv, narrow, vec) \
    FM_POSITION_##name,
    FM_KERNELS(FM_POSITION_ROW) FM_N_POSITIONS
};
#define FM_CHECK_ROW(name, id, arch, gcc, msvc, features, mr, gemv, narrow, vec)               \
    _Static_assert(id == FM_POSITION_##name, "kernels.def: the id of " #name                   \
                                             " must be its position");                         \
    _Static_assert((mr) >= 1 && FM_TILE_QUANTUM % (mr) == 0,                                   \
                   "kernels.def: the mr of " #name " must divide FM_TILE_QUANTUM");            \
    _Static_assert((gemv) >= 1, "kernels.def: gemv of " #name " must be positive");
FM_KERNELS(FM_CHECK_ROW)
_Static_assert((int)FM_N_POSITIONS == (int)FM_N_KERNELS, "kernels.def: ids run 0 .. n-1");
_Static_assert(FM_KERNEL_generic == 0, "kernels.def: the generic variant comes first");

/* Written once, by fm_select_kernel at import, before any call can read it. */
static int active = FM_KERNEL_generic;

const char *fm_kernel_name(int kernel) {
    return kernel >= 0 && kernel < FM_N_KERNELS ? names[kernel] : "unknown";
}

#if defined(FM_EMULATE_ISA)
/* A test build: the AVX-512, AVX-VNNI and AMX instructions are emulated on AVX2 (csrc/simd.h). */
static uint32_t required(int kernel) { return needs[kernel] & (FM_CPU_AVX2 | FM_CPU_FMA); }
static uint32_t usable_features(void) { return fm_cpu_features(); }
#else
static uint32_t required(int kernel) { return needs[kernel]; }

/* The CPU's features, less AMX when the OS refuses this process the tile state (asked
 * once, on first use; a refused request is not repeated). */
static fm_atomic_int amx_state; /* 0: not asked yet, 1: granted, 2: refused */

static uint32_t usable_features(void) {
    uint32_t f = fm_cpu_features();
    if (!(f & FM_CPU_AMX_TILE)) return f;
    int state = fm_atomic_load(&amx_state);
    if (state == 0) {
        state = fm_cpu_request_amx() == 0 ? 1 : 2;
        fm_atomic_store(&amx_state, state);
    }
    return state == 1 ? f : f & ~(uint32_t)(FM_CPU_AMX_TILE | FM_CPU_AMX_BF16 | FM_CPU_AMX_INT8);
}
#endif

int fm_emulated_isa(void) {
#if defined(FM_EMULATE_ISA)
    return 1;
#else
    return 0;
#endif
}

int fm_kernel_supported(int kernel) {
    if (kernel < 0 || kernel >= FM_N_KERNELS || tables[kernel].dense_f32 == NULL) return 0;
    return (usable_features() & required(kernel)) == required(kernel);
}

unsigned fm_kernel_missing_features(int kernel) {
    if (kernel < 0 || kernel >= FM_N_KERNELS || tables[kernel].dense_f32 == NULL) return ~0u;
    return required(kernel) & ~usable_features();
}

int fm_select_kernel(const char *name) {
    fm_plan_set_l2(fm_cpu_caches().l2); /* CPUID is slow under a hypervisor: read once */
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
