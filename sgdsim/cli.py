"""The `sgdsim` command: list, run, inspect, plot.

Exit codes: 0 success; 1 a run that diverged or failed; 2 bad input (unknown scenario or parameter, wrong
type or range, missing or corrupt file), reported in one line without a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ParameterError, SgdsimError
from .runfile import RunWriter
from .runread import open_run
from .scenario import broken_scenarios, figure_path, get_scenario, scenarios

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
        raise ParameterError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sgdsim", description="Simulate SGD as a cloud of particles and compare with theory.")
    p.add_argument("--version", action="version", version=f"sgdsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the scenarios and their parameters")
    run = sub.add_parser("run", help="run a scenario and write its run file and figure")
    run.add_argument("scenario")
    run.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                     help="override parameters (see `sgdsim list`)")
    run.add_argument("--preset", help="a named parameter set of the scenario, e.g. small")
    run.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    run.add_argument("--out", help="run file path (default <scenario>-seed<N>.h5)")
    run.add_argument("--plot", dest="plot", action="store_true", default=True,
                     help="write the figure beside the run file (default)")
    run.add_argument("--no-plot", dest="plot", action="store_false", help="skip the figure")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    inspect = sub.add_parser("inspect", help="describe a run file")
    inspect.add_argument("path")
    plot = sub.add_parser("plot", help="draw the figure of a run file")
    plot.add_argument("path")
    plot.add_argument("--out", help="PNG path (default beside the run file)")
    return p


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"--set takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _list() -> int:
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
    started = time.perf_counter()
    with RunWriter(out, scenario=scenario.name, params=params, seed=args.seed) as writer:
        status, message, lines = scenario.run(params, args.seed, writer, not args.quiet)
        writer.close(status, message)
    if args.plot:
        with open_run(out) as run:
            scenario.plot(run, figure_path(out))
    if not args.quiet:
        for line in lines:
            print(line)
        print(f"run file: {out}" + (f"   figure: {figure_path(out)}" if args.plot else "")
              + f"   ({time.perf_counter() - started:.1f} s)")
    if status != "complete":
        print(f"sgdsim: run {status}: {message}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _plot(args) -> int:
    with open_run(args.path) as run:
        scenario = get_scenario(run.scenario)
        target = Path(args.out) if args.out else figure_path(args.path)
        scenario.plot(run, target)
    print(f"figure: {target}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            return _list()
        if args.command == "run":
            return _run(args)
        if args.command == "inspect":
            with open_run(args.path) as run:
                print(run.summary())
            return EXIT_OK
        return _plot(args)
    except SgdsimError as e:
        print(f"sgdsim: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sgdsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
