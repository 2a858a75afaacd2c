/* Activation functions, float and double; compiled once per instruction set. */
#include "fastmlp.h"
#include "isa.h"
#include "vmath.h"

#define REAL float
#define SFX f32
#define M_EXP_NEG fm_exp_neg_f32
#define M_EXPM1_NEG fm_expm1_neg_f32
#define M_LOG1P_UNIT fm_log1p_unit_f32
#define M_GELU fm_gelu_f32
#define M_EXPM1 fm_expm1_f32
#define M_LOG1P_POS fm_log1p_pos_f32
#define M_EXP_MUL fm_exp_mul_f32
#define M_TANH fm_tanh_f32
#define M_SIGMOID fm_sigmoid_f32
#define M_DIV_REM fm_div_rem_f32
#include "activations_impl.h"
#undef REAL
#undef SFX
#undef M_EXP_NEG
#undef M_EXPM1_NEG
#undef M_LOG1P_UNIT
#undef M_GELU
#undef M_EXPM1
#undef M_LOG1P_POS
#undef M_EXP_MUL
#undef M_TANH
#undef M_SIGMOID
#undef M_DIV_REM

#define REAL double
#define SFX f64
#define M_EXP_NEG fm_exp_neg_f64
#define M_EXPM1_NEG fm_expm1_neg_f64
#define M_LOG1P_UNIT fm_log1p_unit_f64
#define M_GELU fm_gelu_f64
#define M_EXPM1 fm_expm1_f64
#define M_LOG1P_POS fm_log1p_pos_f64
#define M_EXP_MUL fm_exp_mul_f64
#define M_TANH fm_tanh_f64
#define M_SIGMOID fm_sigmoid_f64
#define M_DIV_REM fm_div_rem_f64
#include "activations_impl.h"
