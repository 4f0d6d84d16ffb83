"""The `sgdsim` command: list, run, check, sweep, inspect, plot, compare.

Exit codes: 0 success; 1 a run that diverged or failed; 2 bad input (unknown scenario or parameter, wrong
type or range, missing or corrupt file), reported in one line without a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ParameterError, SgdsimError
from .compare.claims import all_met, table as claims_table
from .runloop import Interrupt, StopSignal
from .io.runread import open_run
from .scenario import (broken_scenarios, check_resources, figure_path, get_scenario, is_installed, parse_size,
                       scenarios)

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # as a process killed by SIGPIPE


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
        raise ParameterError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sgdsim", description="Simulate SGD as a cloud of particles and compare with theory.")
    p.add_argument("--version", action="version", version=f"sgdsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lst = sub.add_parser("list", help="list the scenarios and their parameters (or one scenario, or the theories)")
    lst.add_argument("scenario", nargs="?", help="show only this scenario: its parameters and presets")
    lst.add_argument("--theories", action="store_true",
                     help="list the theories of `sgdsim compare --theory` and what they apply to")
    run = sub.add_parser("run", help="run a scenario and write its run file and figure")
    run.add_argument("scenario")
    run.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                     help="override parameters (see `sgdsim list`)")
    run.add_argument("--preset", help="a named parameter set of the scenario, e.g. small")
    run.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    run.add_argument("--out", help="run file path (default <scenario>-seed<N>.h5)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run file at that path")
    run.add_argument("--max-memory", metavar="SIZE", help="refuse a run whose estimated memory exceeds SIZE "
                                                          "(e.g. 8G; default: the memory available)")
    run.add_argument("--max-output", metavar="SIZE", help="refuse a run whose estimated run file exceeds SIZE "
                                                          "(e.g. 50G; default: the free disk)")
    run.add_argument("--plot", dest="plot", action="store_true", default=True,
                     help="write the figure beside the run file (default)")
    run.add_argument("--no-plot", dest="plot", action="store_false", help="skip the figure")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    run.add_argument("--check", action="store_true",
                     help="exit 1 unless every claim of the run meets its expectation (as `sgdsim check`)")
    check = sub.add_parser("check", help="print the claims of run files with their verdicts; exit 0 when every "
                                         "claim meets its expectation, 1 when one does not, 2 on bad input")
    check.add_argument("paths", nargs="+", metavar="RUN")
    check.add_argument("--quiet", action="store_true", help="print only the claims not met")
    recover = sub.add_parser("recover", help="make the .partial file of a killed run readable by every HDF5 "
                                             "tool: clear its write flags, mark it 'killed', rename it")
    recover.add_argument("path", metavar="FILE", help="the .partial file (or the run's final name)")
    inspect = sub.add_parser("inspect", help="describe a run file, or a sweep folder (spec, task states, claims)")
    inspect.add_argument("path")
    plot = sub.add_parser("plot", help="draw the figure of a run file, or of a sweep folder")
    plot.add_argument("path")
    plot.add_argument("--out", help="PNG path (default beside the run file)")
    plot.add_argument("--log", choices=("x", "y", "xy"),
                      help="logarithmic axes for the figure of a run without a scenario figure (e.g. recorded)")
    from .compare.comparison import TIME_AXES, theory_help
    cmp = sub.add_parser("compare", help="hold a run against another run or a theory: discrepancy metrics per "
                                         "quantity, stored in its /comparison, and an overlay figure")
    cmp.add_argument("path")
    ref = cmp.add_mutually_exclusive_group(required=True)
    ref.add_argument("--against", metavar="OTHER_RUN", help="a second run file (measured vs measured)")
    ref.add_argument("--theory", metavar="NAME", help=f"a registered theory: {theory_help()}")
    cmp.add_argument("--quantity", nargs="+", action="extend", metavar="Q",
                     help="compare only these observables (default: all present in both)")
    cmp.add_argument("--time", default="time", metavar="AXIS",
                     help=f"time axis, one of {', '.join(TIME_AXES)}: the recorded time column (default), "
                          f"t = lr * step (lr from the run's params), or the step")
    cmp.add_argument("--out", help="figure path (default <run stem>-compare.png beside the run file)")
    cmp.add_argument("--no-write", action="store_true", help="do not store the metrics in the run file")
    cmp.add_argument("--no-plot", action="store_true", help="skip the overlay figure")
    _sweep_parser(sub)
    return p


def _sweep_parser(sub) -> None:
    sw = sub.add_parser("sweep", help="run a scenario over a grid of parameters and replicates, resumably, "
                                      "on a process pool or a Dask cluster")
    sw.add_argument("scenario")
    sw.add_argument("--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2,...",
                    help="a swept parameter and its values (repeat for a product grid)")
    sw.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="parameters fixed for every run")
    sw.add_argument("--preset", help="a named parameter set of the scenario, e.g. small")
    sw.add_argument("--replicates", type=int, default=1, help="runs per grid point, with distinct seeds")
    sw.add_argument("--seed", type=int, default=0, help="root seed: task i gets SeedSequence(seed, spawn_key=(i,))")
    sw.add_argument("--out", required=True, help="the sweep folder")
    sw.add_argument("--workers", type=int, help="worker processes (default: CPU count; 1 = serial, in-process)")
    sw.add_argument("--engine", choices=("local", "dask"), default="local",
                    help="local process pool (default) or Dask (pip install 'sgdsim[cluster]')")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786")
    sw.add_argument("--numba-cache-dir", metavar="DIR",
                    help="Numba cache of the workers sgdsim starts, on node-local disk (default: inherit "
                         "NUMBA_CACHE_DIR, else Numba's default beside the sources)")
    sw.add_argument("--resume", action="store_true", help="continue the sweep in --out: run what is missing")
    sw.add_argument("--max-memory", metavar="SIZE", help="refuse a sweep whose runs, --workers at a time, need "
                                                          "more memory than SIZE (default: the memory available)")
    sw.add_argument("--max-output", metavar="SIZE", help="refuse a sweep whose run files together exceed SIZE "
                                                          "(default: the free disk)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar and no summary")


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"--set takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _list(args) -> int:
    if args.theories:
        from .compare.registry import broken_theories, theories
        for name, theory in theories().items():
            needs = [*theory.quantities, *(f"param {p}" for p in theory.params)]
            print(f"{name}: {theory.summary}")
            print(f"    applies to {theory.applies_to}" + (f"; needs {', '.join(needs)}" if needs else ""))
        for name, reason in broken_theories().items():
            print(f"{name}: (fails to load: {reason})")
        return EXIT_OK
    if args.scenario:
        sc = get_scenario(args.scenario)
        print(f"{sc.name}: {sc.summary}")
        for p in sc.params:
            print(f"    {p.name} ({p.type.__name__}, default {p.default}): {p.help}")
        for preset, values in sc.presets.items():
            print(f"    preset {preset}: " + " ".join(f"{k}={v}" for k, v in values.items()))
        return EXIT_OK
    for name, sc in scenarios().items():
        print(f"{name}: {sc.summary}")
        for p in sc.params:
            print(f"    {p.name} ({p.type.__name__}, default {p.default}): {p.help}")
        if sc.presets:
            print(f"    presets: {', '.join(sc.presets)}")
    for name, reason in broken_scenarios().items():
        print(f"{name}: (fails to load: {reason})")
    return EXIT_OK


def _run(args) -> int:
    scenario = get_scenario(args.scenario)
    params = scenario.resolve(_overrides(args.set), args.preset)
    if args.seed < 0 or args.seed >= 2 ** 63:
        raise ParameterError(f"--seed must be in [0, 2**63), got {args.seed}")
    out = Path(args.out or f"{scenario.name}-seed{args.seed}.h5")
    if out.exists() and not args.overwrite:
        raise ParameterError(f"{out} exists (an earlier run?): pass --overwrite to replace it, or choose another "
                             f"--out")
    check_resources(scenario, params, out,
                    max_memory=None if args.max_memory is None else parse_size(args.max_memory, "--max-memory"),
                    max_output=None if args.max_output is None else parse_size(args.max_output, "--max-output"))
    started = time.perf_counter()
    with Interrupt() as stop:   # SIGINT/SIGTERM: the run loop stops at its next chunk, the file says interrupted
        status, message, lines = scenario.write_run(params, args.seed, out, not args.quiet)
    if args.plot:
        with open_run(out) as run:
            _draw(scenario, run, figure_path(out))
    with open_run(out) as run:
        claims, reached = run.claims, run.reached()
    if not args.quiet:
        for line in lines:
            print(line)
        if claims:
            print(claims_table(claims, "claims (theory vs measurement):"))
        print(f"run file: {out}" + (f"   figure: {figure_path(out)}" if args.plot else "")
              + f"   ({time.perf_counter() - started:.1f} s)")
    if status != "complete":
        print(f"sgdsim: run {status}: {message}; {reached}", file=sys.stderr)
        return stop.exit_code if status == "interrupted" and stop.requested else EXIT_RUN_FAILED
    if args.check and not all_met(claims):
        print(f"sgdsim: check: {_unmet(claims)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _draw(scenario, run, target) -> None:
    """The scenario's figure; for a run that stopped early (interrupted, diverged, killed) whose file lacks
    what that figure needs, every observable against time instead."""
    try:
        scenario.plot(run, target)
    except Exception:
        if run.status == "complete":
            raise
        from .plotting import overview
        overview(run, target)


def _unmet(claims) -> str:
    if not claims:
        return "the run states no claims"
    bad = [c for c in claims if not c.met]
    return (f"{len(bad)} of {len(claims)} claims not met: "
            + ", ".join(f"{c.name} ({c.verdict}, expected {c.expected})" for c in bad))


def _check(args) -> int:
    """Open every file first (a missing or corrupt one is bad input, exit 2), then print the tables."""
    runs = {}
    for path in args.paths:
        with open_run(path) as run:
            runs[path] = (run.scenario, run.status, run.claims)
    worst = EXIT_OK
    for path, (scenario, status, claims) in runs.items():
        ok = all_met(claims)
        if not ok:
            worst = EXIT_RUN_FAILED
        if args.quiet and ok:
            continue
        head = f"{path}: {scenario}, status {status}"
        if not claims:
            print(f"{head}: no claims")
        elif args.quiet:
            print(f"{head}: {_unmet(claims)}")
        else:
            print(claims_table(claims, head))
    return worst


def _inspect(path: str) -> int:
    """A run file's description, or a sweep folder's (also given as DIR/sweep.h5)."""
    p = Path(path)
    if p.is_dir() or (p.name == "sweep.h5" and (p.parent / "manifest.json").exists()):
        from .sweep.summary import describe_sweep
        print(describe_sweep(p if p.is_dir() else p.parent))
        return EXIT_OK
    with open_run(p) as run:
        print(run.summary())
    return EXIT_OK


def _plot(args) -> int:
    if Path(args.path).is_dir():  # a sweep folder
        from .sweep.plot import plot_sweep
        print(f"figure: {plot_sweep(args.path, args.out)}")
        return EXIT_OK
    with open_run(args.path) as run:
        target = Path(args.out) if args.out else figure_path(args.path)
        if is_installed(run.scenario):
            if args.log:
                raise ParameterError(f"--log applies to runs without a scenario figure; {run.scenario} draws its own")
            _draw(get_scenario(run.scenario), run, target)
        else:  # e.g. a run written by sgdsim.record: every observable against time
            from .plotting import overview
            overview(run, target, log=args.log or "")
    print(f"figure: {target}")
    return EXIT_OK


def _sweep(args) -> int:
    from .sweep.runner import make_spec, make_tasks, open_executor, parse_grid, run_sweep
    spec = make_spec(args.scenario, parse_grid(args.grid), fixed=_overrides(args.set), preset=args.preset,
                     replicates=args.replicates, seed=args.seed)
    if args.engine == "local":  # a cluster's workers have their own machines' memory and disks
        check_resources(get_scenario(spec.scenario), [t.params for t in make_tasks(spec)], Path(args.out) / "runs",
                        parallel=args.workers or os.cpu_count() or 1,
                        max_memory=None if args.max_memory is None else parse_size(args.max_memory, "--max-memory"),
                        max_output=None if args.max_output is None else parse_size(args.max_output, "--max-output"))
    try:
        with open_executor(args.engine, args.workers, args.scheduler, args.numba_cache_dir) as (executor, threads):
            result = run_sweep(spec, args.out, executor, resume=args.resume, progress=not args.quiet,
                               numba_threads=threads)
    except KeyboardInterrupt:
        print(f"sgdsim: sweep interrupted; the finished runs are kept in {args.out}: continue with the same "
              f"command and --resume", file=sys.stderr)
        return 130
    lines = result.report()
    if not args.quiet:
        print(lines[0])
    for line in lines[1:]:  # the runs that did not complete, always
        print(line, file=sys.stderr)
    return EXIT_RUN_FAILED if result.unfinished else EXIT_OK


def _compare(args) -> int:
    from .compare.comparison import compare
    result = compare(args.path, against=args.against, theory=args.theory, quantities=args.quantity,
                     time=args.time, write=not args.no_write, plot=not args.no_plot, out=args.out)
    print(result.table())
    if result.written:
        print(f"metrics written to {args.path}:/comparison")
    if result.figure:
        print(f"figure: {result.figure}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            return _list(args)
        if args.command == "run":
            return _run(args)
        if args.command == "inspect":
            return _inspect(args.path)
        if args.command == "compare":
            return _compare(args)
        if args.command == "check":
            return _check(args)
        if args.command == "recover":
            from .io.recover import recover
            final, step, t = recover(args.path)
            print(f"recovered: {final} (status killed, last flushed step {step}, t = {t:g})")
            return EXIT_OK
        if args.command == "sweep":
            return _sweep(args)
        return _plot(args)
    except SgdsimError as e:
        print(f"sgdsim: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError as e:  # an allocation no estimate foresaw: bad input (too large), not a crash
        print(f"sgdsim: error: out of memory ({' '.join(str(e).split()) or 'MemoryError'}); use a smaller "
              f"run", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sgdsim: interrupted", file=sys.stderr)
        return 130
    except StopSignal as e:
        print(f"sgdsim: {e}", file=sys.stderr)
        return 128 + e.signum
    except BrokenPipeError:  # e.g. `sgdsim inspect run.h5 | head -1`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
