"""Claims: one checked statement of theory against measurement, with a verdict computed by one function.

A scenario states what the papers it reproduces predict for its run, in numbers::

    Claim(name="right_well", statement="fraction in the right well equals the Fokker-Planck transient",
          measured=0.443, predicted=0.445, stderr=0.004, test="z", tolerance=4.0,
          source="Risken 1989, eq. 5.4")

Tests (measured m, predicted p, standard error s, tolerance k; arrays pass when every element does):

    "z"        |m - p| <= k s          (a statistical agreement; s > 0 required)
    "rel"      |m - p| <= k |p|        (an approximation of a stated relative order)
    "abs"      |m - p| <= k
    "less"     m + k s < p             (an inequality; k s = 0 when s is not given)
    "greater"  m - k s > p

`expected` is "holds" for what the scenario reproduces, "fails" for a theory it shows breaking (e.g. the
continuous Lyapunov covariance at large lr). The verdict is "holds", "fails", or "undetermined" when an input
is not finite (a diverged run states nothing); a claim is *met* when its verdict is what was expected.

Run-file layout (`/claims`, written by `RunWriter.claims`, read by `Run.claims`): one row per claim, as
1-D columns along the dimension `claim` (so ``xarray.open_dataset(path, engine="h5netcdf", group="claims")``
and ``pandas.DataFrame({k: f["claims"][k][()] for k in COLUMNS})`` read it as a table):
name, statement, test, expected, verdict, source (UTF-8 strings); measured, predicted, stderr, tolerance,
score (float64: for an array claim the element that decides the verdict); met (bool); size (int64, the
number of elements). Array-valued claims also keep their full arrays in ``/claims/arrays/<name>/{measured,
predicted,stderr}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError
from ..text import estimate, number

__all__ = ["Claim", "TESTS", "EXPECTATIONS", "VERDICTS", "COLUMNS", "verdict", "table", "all_met", "familywise_z",
           "deciding", "columns", "from_columns"]

TESTS = ("z", "rel", "abs", "less", "greater")
EXPECTATIONS = ("holds", "fails")
VERDICTS = ("holds", "fails", "undetermined")
COLUMNS = ("name", "statement", "measured", "predicted", "stderr", "test", "tolerance", "score", "expected",
           "verdict", "met", "source", "size")


def _array(value, what: str, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"claim {name!r}: {what} must be a number or an array of numbers, "
                             f"got {value!r}") from None


@dataclass(frozen=True, eq=False)
class Claim:
    """One checked statement: measured vs predicted under `test` with `tolerance`; see the module doc."""
    name: str
    statement: str
    measured: float | np.ndarray
    predicted: float | np.ndarray
    test: str
    tolerance: float = 0.0
    stderr: float | np.ndarray | None = None
    expected: str = "holds"
    source: str = ""
    arrays: dict = field(default_factory=dict, repr=False)   # filled by the reader for array claims

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ParameterError(f"claim name must be non-empty and free of '/', got {self.name!r}")
        if self.test not in TESTS:
            raise ParameterError(f"claim {self.name!r}: test must be one of {', '.join(TESTS)}, got {self.test!r}")
        if self.expected not in EXPECTATIONS:
            raise ParameterError(f"claim {self.name!r}: expected must be 'holds' or 'fails', got {self.expected!r}")
        if not (np.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ParameterError(f"claim {self.name!r}: tolerance must be finite and >= 0, got {self.tolerance!r}")
        if self.test == "z" and self.stderr is None:
            raise ParameterError(f"claim {self.name!r}: a z test needs a standard error")
        m, p = _array(self.measured, "measured", self.name), _array(self.predicted, "predicted", self.name)
        s = None if self.stderr is None else _array(self.stderr, "stderr", self.name)
        try:
            np.broadcast_shapes(m.shape, p.shape, () if s is None else s.shape)
        except ValueError:
            raise ParameterError(f"claim {self.name!r}: measured {m.shape}, predicted {p.shape} and stderr "
                                 f"{None if s is None else s.shape} do not broadcast") from None

    @property
    def score(self) -> float:
        """The deciding number: max |z|, max relative or absolute error, or for an inequality the worst
        margin (m + k s - p for "less", p - m + k s for "greater": negative when it holds)."""
        return _evaluate(self)[1]

    @property
    def verdict(self) -> str:
        """'holds', 'fails', or 'undetermined' (an input is not finite)."""
        return _evaluate(self)[0]

    @property
    def met(self) -> bool:
        """Whether the verdict is the expected one."""
        return self.verdict == self.expected

    @property
    def size(self) -> int:
        return int(np.broadcast(*_inputs(self)).size)


def _inputs(claim: Claim) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = np.asarray(claim.measured, dtype=np.float64)
    p = np.asarray(claim.predicted, dtype=np.float64)
    s = np.zeros(()) if claim.stderr is None else np.asarray(claim.stderr, dtype=np.float64)
    return np.broadcast_arrays(m, p, s)


def _evaluate(claim: Claim) -> tuple[str, float, int]:
    """(verdict, score, index of the deciding element): the one function every verdict comes from."""
    m, p, s = _inputs(claim)
    if m.size == 0:
        return "undetermined", float("nan"), 0
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(p)) and np.all(np.isfinite(s))):
        return "undetermined", float("nan"), 0
    k = claim.tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        if claim.test == "z":
            if np.any(s <= 0):
                return "undetermined", float("nan"), 0
            scores, limit = np.abs(m - p) / s, k
        elif claim.test == "rel":
            scores, limit = np.where(p != 0, np.abs(m - p) / np.abs(p), np.where(m == p, 0.0, np.inf)), k
        elif claim.test == "abs":
            scores, limit = np.abs(m - p), k
        elif claim.test == "less":
            scores, limit = m + k * s - p, None
        else:  # greater
            scores, limit = p - (m - k * s), None
    flat = scores.reshape(-1)
    worst = int(np.argmax(flat))
    score = float(flat[worst])
    holds = score < 0 if limit is None else score <= limit
    return ("holds" if holds else "fails"), score, worst


def familywise_z(n: int, alpha: float = 0.01, dof: int | None = None) -> float:
    """The |z| bound for n z-scores checked together (one per recorded time, say) so that a true theory fails
    any of them with probability at most alpha: Phi^-1(1 - alpha/(2n)) (Bonferroni; 3.9 for n = 100). With
    `dof`, the standard errors are estimated from dof + 1 replicates and the bound is Student's t quantile
    with dof degrees of freedom instead (5.0 for n = 25, dof = 11)."""
    from scipy.special import ndtri, stdtrit
    if n < 1 or not 0 < alpha < 1 or (dof is not None and dof < 1):
        raise ParameterError(f"familywise_z needs n >= 1, 0 < alpha < 1 and dof >= 1, got n={n}, alpha={alpha}, "
                             f"dof={dof}")
    return float(-ndtri(alpha / (2 * n)) if dof is None else -stdtrit(dof, alpha / (2 * n)))


def verdict(claim: Claim) -> str:
    """The verdict of one claim ('holds', 'fails' or 'undetermined')."""
    return _evaluate(claim)[0]


def all_met(claims) -> bool:
    """True when every claim's verdict is the expected one (and there is at least one claim)."""
    claims = list(claims)
    return bool(claims) and all(c.met for c in claims)


def deciding(claim: Claim) -> tuple[float, float, float]:
    """(measured, predicted, stderr) at the element that decides the verdict (nan stderr if none)."""
    m, p, s = _inputs(claim)
    i = _evaluate(claim)[2]
    se = float(s.reshape(-1)[i]) if claim.stderr is not None and s.size else float("nan")
    return float(m.reshape(-1)[i]) if m.size else float("nan"), float(p.reshape(-1)[i]) if p.size else \
        float("nan"), se


def _test_text(claim: Claim) -> str:
    k = f"{claim.tolerance:g}"
    return {"z": f"|z| <= {k}", "rel": f"rel <= {k}", "abs": f"abs <= {k}",
            "less": "m < p" if claim.tolerance == 0 or claim.stderr is None else f"m + {k} se < p",
            "greater": "m > p" if claim.tolerance == 0 or claim.stderr is None else f"m - {k} se > p"}[claim.test]


def table(claims, title: str | None = None) -> str:
    """The verdict table `sgdsim run` and `sgdsim check` print: claim, measured +- se, predicted, test,
    score, verdict, expected, and a mark where the verdict is not the expected one."""
    claims = list(claims)
    rows = [("claim", "measured", "predicted", "test", "score", "verdict", "expected", "")]
    for c in claims:
        m, p, s = deciding(c)
        size = f" [{c.size}]" if c.size > 1 else ""
        rows.append((c.name + size, estimate(m, s) if c.verdict != "undetermined" else "n/a",
                     number(p), _test_text(c),
                     number(c.score, 3), c.verdict, c.expected,
                     "ok" if c.met else "NOT MET"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [title] if title else []
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    met = sum(c.met for c in claims)
    lines.append(f"  {met} of {len(claims)} claims met" + ("" if met == len(claims) else
                 ": " + ", ".join(c.name for c in claims if not c.met) + " not as expected"))
    return "\n".join(lines)


def columns(claims) -> dict[str, np.ndarray]:
    """The `/claims` table as columns (see the module doc): strings as Python str objects, numbers as float64,
    `met` bool, `size` int64; one row per claim."""
    claims = list(claims)
    decided = [deciding(c) for c in claims]
    return {"name": np.array([c.name for c in claims], dtype=object),
            "statement": np.array([c.statement for c in claims], dtype=object),
            "measured": np.array([d[0] for d in decided], dtype=np.float64),
            "predicted": np.array([d[1] for d in decided], dtype=np.float64),
            "stderr": np.array([d[2] for d in decided], dtype=np.float64),
            "test": np.array([c.test for c in claims], dtype=object),
            "tolerance": np.array([c.tolerance for c in claims], dtype=np.float64),
            "score": np.array([c.score for c in claims], dtype=np.float64),
            "expected": np.array([c.expected for c in claims], dtype=object),
            "verdict": np.array([c.verdict for c in claims], dtype=object),
            "met": np.array([c.met for c in claims], dtype=bool),
            "source": np.array([c.source for c in claims], dtype=object),
            "size": np.array([c.size for c in claims], dtype=np.int64)}


def from_columns(cols: dict[str, np.ndarray], arrays: dict[str, dict[str, np.ndarray]]) -> list[Claim]:
    """Claims rebuilt from the stored table (and the full arrays of array claims)."""
    out = []
    for i, name in enumerate(cols["name"]):
        full = arrays.get(name, {})
        stderr = full.get("stderr", cols["stderr"][i])
        if (np.ndim(stderr) == 0 and not np.isfinite(stderr) and cols["test"][i] != "z"
                and cols["verdict"][i] != "undetermined"):
            stderr = None   # stored as nan: the claim had no standard error
        out.append(Claim(name=name, statement=cols["statement"][i],
                         measured=full.get("measured", float(cols["measured"][i])),
                         predicted=full.get("predicted", float(cols["predicted"][i])),
                         test=cols["test"][i], tolerance=float(cols["tolerance"][i]), stderr=stderr,
                         expected=cols["expected"][i], source=cols["source"][i], arrays=full))
    return out
