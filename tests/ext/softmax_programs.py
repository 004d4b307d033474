"""Shared by the fused-softmax tests (C++ kernel and CUDA kernel): pre/post programs with their
derivative programs, and the float64 torch reference they are checked against."""
from autobert_ext import reference as R
from autobert_ext.program import BY_NAME, Program

OP = {name: o.code for name, o in BY_NAME.items()}

# PRE: x = tanh(a) * b * 0.8 + softsign(a)   (2 inputs)
PRE = Program(2, ((OP["tanh"], 2, 0, -1, 0.0), (OP["mul"], 3, 2, 1, 0.0), (OP["mulc"], 4, 3, -1, 0.8),
                  (OP["softsign"], 5, 0, -1, 0.0), (OP["add"], 6, 4, 5, 0.0)), (6,))
# PRE_BWD (a, b, gx): da = gx * (0.8 b (1 - tanh^2 a) + 1 / (1 + |a|)^2), db = gx * 0.8 tanh(a)
PRE_BWD = Program(3, (
    (OP["tanh"], 3, 0, -1, 0.0), (OP["square"], 4, 3, -1, 0.0), (OP["mulc"], 5, 4, -1, -1.0),
    (OP["addc"], 6, 5, -1, 1.0), (OP["mul"], 7, 6, 1, 0.0), (OP["mulc"], 8, 7, -1, 0.8),
    (OP["abs"], 9, 0, -1, 0.0), (OP["addc"], 10, 9, -1, 1.0), (OP["square"], 11, 10, -1, 0.0),
    (OP["recip"], 12, 11, -1, 0.0), (OP["add"], 13, 8, 12, 0.0), (OP["mul"], 14, 13, 2, 0.0),
    (OP["mul"], 15, 3, 2, 0.0), (OP["mulc"], 16, 15, -1, 0.8),
), (14, 16))
# POST: out = y^2 + 0.5 y;  POST_BWD (y, g): gy = g (2 y + 0.5)
POST = Program(1, ((OP["square"], 1, 0, -1, 0.0), (OP["fma"], 2, 0, 0, 0.0), (OP["mulc"], 3, 0, -1, 0.5),
                   (OP["add"], 4, 1, 3, 0.0)), (4,))
POST_BWD = Program(2, ((OP["mulc"], 2, 0, -1, 2.0), (OP["addc"], 3, 2, -1, 0.5), (OP["mul"], 4, 3, 1, 0.0)), (4,))


def reference(pre, post, inputs, mask):
    """POST(masked softmax(PRE(inputs))): the one eager reference, ``autobert_ext.reference``."""
    return R.fused_softmax(pre, post, inputs, mask)
