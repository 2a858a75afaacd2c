/* The activations' names: the one table the Python API reads its codes from
 * (fastmlp/_activations.py through _core.activation_codes). */
#include "fastmlp.h"

static const char *const FM_ACTIVATION_NAMES[FM_N_ACTIVATIONS] = {
    [FM_IDENTITY] = "identity",
    [FM_RELU] = "relu",
    [FM_TANH] = "tanh",
    [FM_SIGMOID] = "sigmoid",
    [FM_SOFTMAX] = "softmax",
    [FM_LEAKY_RELU] = "leaky_relu",
    [FM_ELU] = "elu",
    [FM_GELU] = "gelu",
    [FM_GELU_TANH] = "gelu_tanh",
    [FM_SILU] = "silu",
    [FM_SOFTPLUS] = "softplus",
    [FM_SELU] = "selu",
    [FM_CELU] = "celu",
    [FM_MISH] = "mish",
    [FM_HARDSWISH] = "hardswish",
    [FM_HARDSIGMOID] = "hardsigmoid",
    [FM_RELU6] = "relu6",
    [FM_HARDTANH] = "hardtanh",
    [FM_PRELU] = "prelu",
    [FM_SOFTSIGN] = "softsign",
    [FM_LOG_SOFTMAX] = "log_softmax",
};

const char *fm_activation_name(int kind) {
    return kind >= 0 && kind < FM_N_ACTIVATIONS ? FM_ACTIVATION_NAMES[kind] : NULL;
}
