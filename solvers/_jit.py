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


class LiteralDispatch:
    """Call a jitted function that specializes on some arguments with `numba.literally`, without paying
    literal dispatch on every call (~0.05-0.1 s: Numba first types the call with plain ints, which raises
    and retries). The first call per combination of argument types and literal values goes through the
    dispatcher (compiling, or loading from the cache); later ones call the compiled entry point directly."""

    def __init__(self, dispatcher, literal_positions: tuple[int, ...]):
        self.dispatcher = dispatcher
        self.positions = literal_positions
        self._entry_points: dict = {}

    def __call__(self, *args):
        types = tuple(numba.typeof(a) for a in args)
        key = (types, tuple(args[i] for i in self.positions))
        entry = self._entry_points.get(key)
        if entry is not None:
            return entry(*args)
        result = self.dispatcher(*args)
        for signature, compiled in self.dispatcher.overloads.items():
            literal = all(getattr(signature[i], "literal_value", None) == args[i] for i in self.positions)
            others = all(signature[i] == t for i, t in enumerate(types) if i not in self.positions)
            if literal and others:
                self._entry_points[key] = compiled.entry_point
        return result
