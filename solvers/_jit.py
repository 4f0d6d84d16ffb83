"""The one place for Numba settings: every kernel in `solvers/` is compiled through `jit`.

cache=True so a second process starts in about a second; fastmath stays off because the divergence
checks rely on NaN comparisons; error_model="numpy" lets x/0 give inf (caught by those checks) instead of
raising inside a parallel loop.
"""
from __future__ import annotations

import numba

JIT_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def jit(fn=None, *, parallel: bool = False, inline: str = "never"):
    """Compile `fn` with the project's Numba settings (usable bare or with keywords)."""
    def wrap(f):
        return numba.njit(parallel=parallel, inline=inline, **JIT_OPTIONS)(f)
    return wrap(fn) if fn is not None else wrap
