"""The one exception type of the attention-graph IR."""


class GraphError(ValueError):
    """An invalid graph, expression or JSON document.

    The message names the node (index and op) or the character position and says what
    was expected, e.g. ``node 4 (matmul): contraction mismatch: left is (N,N), right is (d,N)``.
    """
