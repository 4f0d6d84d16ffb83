"""Sweeps: grids of runs on an executor (`runner`, re-exported here), the executors (`executors`), the
summary file (`summary`) and its figure (`plot`).
"""
from .runner import (FORMAT, FINISHED, SweepSpec, Task, SweepResult, parse_grid, make_spec, canonical_json,
                     task_id, task_seed, make_tasks, run_task, one_line, load_manifest, run_sweep)

__all__ = ["FORMAT", "FINISHED", "SweepSpec", "Task", "SweepResult", "parse_grid", "make_spec",
           "canonical_json", "task_id", "task_seed", "make_tasks", "run_task", "one_line", "load_manifest",
           "run_sweep"]
