"""Holding runs against theory: claims with verdicts (`claims`), comparisons of a run with another run or a
theory (`comparison`, re-exported here), their metrics (`metrics`) and the theory registry (`registry`).
"""
from .comparison import (TIME_AXES, OVERLAP_SLACK, MAX_PANELS, QuantityComparison, Comparison, compare_path,
                         compare, overlay)

__all__ = ["TIME_AXES", "OVERLAP_SLACK", "MAX_PANELS", "QuantityComparison", "Comparison", "compare_path",
           "compare", "overlay"]
