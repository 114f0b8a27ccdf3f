"""The ``mpsync`` command.

Sub-commands::

    mpsync demo [--quick] [--out DIR]
    mpsync steady --model chain --n 6 --spacing 0.1 --theta magic --W 2 --method exact --json
    mpsync evolve --model chain --n 6 --spacing 0.1 --W 2 --t-max 10 --steps 50 --json
    mpsync sweep spec.toml [--scheduler tcp://host:port] [--out results.nc]
    mpsync figure NAME [--quick] [--out DIR]
    mpsync validate [--quick] [--out validation/agreement.md]

Every user error prints one line (``mpsync: error: ...``) and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["main", "build_parser", "system_from_args"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _float_list(text):
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _shape(text):
    try:
        parts = [int(x) for x in text.lower().replace("*", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 30x30 or 200, got {text!r}") from None
    if not parts or any(p < 1 for p in parts) or len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected a shape like 30x30 or 200, got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _add_system_args(p):
    g = p.add_argument_group("dipole system (rates in units of Gamma, lengths in units of lambda)")
    g.add_argument("--model", choices=["chain", "all-to-all", "power-law"], default="chain")
    g.add_argument("--n", type=int, help="number of dipoles N")
    g.add_argument("--spacing", type=float, help="chain spacing in units of lambda")
    g.add_argument("--theta", default="magic", help="dipole angle to the chain in radians, or 'magic'")
    g.add_argument("--W", type=float, required=True, help="incoherent pump rate W")
    g.add_argument("--gamma", type=float, default=1.0, help="single-atom decay rate Gamma (default 1)")
    g.add_argument("--f-eff", type=float, help="all-to-all: f_eff (f_ab = f_eff/N)")
    g.add_argument("--g-eff", type=float, default=0.0, help="all-to-all: g_eff (g_ab = g_eff/N)")
    g.add_argument("--alpha", type=float, help="power-law exponent")
    g.add_argument("--f0", type=float, default=0.25, help="power-law prefactor (f_ab = f0 Gamma r^-alpha)")
    g.add_argument("--shape", type=_shape, help="power-law: 200 (chain) or 30x30 (square lattice)")
    g.add_argument("--delta", type=_float_list, help="detunings delta_a, comma separated")
    g.add_argument("--delta-spread", type=float,
                   help="draw detunings uniformly in [-D/2, D/2] (reproducible with --seed)")
    g.add_argument("--seed", type=int, help="random seed (detunings, trajectories)")


def _add_solver_args(p):
    g = p.add_argument_group("solver")
    g.add_argument("--method", default="exact",
                   help="exact, permutational, mpo, meanfield, cumulant or trajectories")
    g.add_argument("--max-bond", type=int, help="MPO: maximum bond dimension")
    g.add_argument("--cutoff", type=float, help="MPO: singular-value cutoff")
    g.add_argument("--tol", type=float, help="convergence tolerance (residual)")
    g.add_argument("--ntraj", type=int, help="trajectories: number of trajectories")
    g.add_argument("--unravelling", choices=["jumps", "diffusion", "homodyne"], help="trajectories: unravelling")
    g.add_argument("--dt", type=float, help="time step")
    g.add_argument("--checkpoint", help="MPO: checkpoint file")
    g.add_argument("--resume", help="MPO: resume from a checkpoint file")
    g.add_argument("--workers", type=int, help="parallel worker processes")
    g.add_argument("--progress", action="store_true", help="show a progress bar")
    g.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="any other solver option (VALUE parsed as JSON when possible); repeatable")


def build_parser():
    parser = _Parser(prog="mpsync", description="Synchronization of interacting quantum dipoles.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("demo", help="the representative study: Z_Q vs W, a chain vs all-to-all")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=".", help="output folder for the PNG")

    for name, helptext in (("steady", "steady state of one system"), ("evolve", "time evolution")):
        p = sub.add_parser(name, help=helptext)
        _add_system_args(p)
        _add_solver_args(p)
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--save", help="save the full arrays to a .npz file")
        if name == "evolve":
            p.add_argument("--t-max", type=float, required=True, help="final time (units of 1/Gamma)")
            p.add_argument("--steps", type=int, default=50, help="number of output times")
            p.add_argument("--initial", default="down", help="initial product state: down, up or x")
        else:
            p.add_argument("--t-max", type=float, help="maximum evolution time toward the steady state")

    p = sub.add_parser("sweep", help="parameter sweep from a TOML spec")
    p.add_argument("spec", help="TOML file")
    p.add_argument("--scheduler", help="Dask scheduler address tcp://host:port")
    p.add_argument("--out", help="output NetCDF/HDF5 file")

    p = sub.add_parser("figure", help="reproduce one figure of the seed paper")
    p.add_argument("name", help="2a, 2b, 2c, 2d, 2e, 3a, 3b, 4, S1, S2, S3")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", help="output folder")

    p = sub.add_parser("validate", help="cross-solver agreement table")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="validation/agreement.md")
    return parser


def system_from_args(args):
    """Build the :class:`~mpsync.DipoleSystem` described by the command-line options."""
    from .errors import InvalidSystemError
    from .model import DipoleSystem

    n = args.n
    if args.model == "power-law" and args.shape is not None:
        n = int(np.prod(args.shape))
    if n is None:
        raise InvalidSystemError(f"--n is required for --model {args.model}")
    delta = None
    if args.delta is not None and args.delta_spread is not None:
        raise InvalidSystemError("give either --delta or --delta-spread, not both")
    if args.delta is not None:
        delta = np.asarray(args.delta)
        if delta.size == 1:
            delta = np.full(n, delta[0])
        if delta.size != n:
            raise InvalidSystemError(f"--delta lists {delta.size} detunings for N = {n} dipoles")
    elif args.delta_spread is not None:
        if not np.isfinite(args.delta_spread) or args.delta_spread < 0:
            raise InvalidSystemError("--delta-spread must be >= 0")
        rng = np.random.default_rng(args.seed)
        delta = rng.uniform(-args.delta_spread / 2, args.delta_spread / 2, size=n)
    if args.model == "chain":
        if args.spacing is None:
            raise InvalidSystemError("--spacing (units of lambda) is required for --model chain")
        return DipoleSystem.chain(n, args.spacing, args.theta, args.W, delta=delta, gamma=args.gamma)
    if args.model == "all-to-all":
        if args.f_eff is None:
            raise InvalidSystemError("--f-eff is required for --model all-to-all")
        return DipoleSystem.all_to_all(n, args.f_eff, args.W, g_eff=args.g_eff, delta=delta,
                                       gamma=args.gamma)
    if args.alpha is None:
        raise InvalidSystemError("--alpha is required for --model power-law")
    shape = args.shape if args.shape is not None else n
    return DipoleSystem.power_law(shape, args.alpha, args.W, f0=args.f0, gamma=args.gamma, delta=delta)


def solver_options(args) -> dict:
    """Solver keyword options from the command line (only those given)."""
    from .errors import MpsyncError

    names = ["max_bond", "cutoff", "tol", "ntraj", "unravelling", "dt", "checkpoint", "resume",
             "workers", "t_max"]
    opts = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    if args.progress:
        opts["progress"] = True
    if args.seed is not None and args.method.lower().startswith(("traj", "mean", "mf")):
        opts["seed"] = args.seed
    for item in args.opt:
        if "=" not in item:
            raise MpsyncError(f"--opt expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            opts[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            opts[key.strip().replace("-", "_")] = value
    return opts


def _print_steady(result):
    print(f"method           {result.method}")
    print(f"N                {result.n}")
    print(f"Z_Q              {float(result.ZQ):.6g}   (Z_Q^2 = {float(result.ZQ2):.6g}, max 1/sqrt(8) = 0.353553)")
    print(f"mean <sz>        {float(np.mean(result.sz)):.6g}")
    for k, v in result.diagnostics.items():
        if isinstance(v, (int, float, str, np.floating, np.integer)):
            print(f"{k:<16} {v}")


def _run(args):
    import mpsync

    if args.command == "demo":
        from . import demo

        demo.run(out_dir=args.out, quick=args.quick)
        return 0
    if args.command in ("steady", "evolve"):
        system = system_from_args(args)
        opts = solver_options(args)
        if args.command == "steady":
            result = mpsync.steady_state(system, method=args.method, **opts)
            if args.save:
                result.save(args.save)
            if args.json:
                print(json.dumps(result.to_dict()))
            else:
                _print_steady(result)
            return 0
        if args.steps < 1 or not np.isfinite(args.t_max) or args.t_max <= 0:
            raise mpsync.MpsyncError("--t-max must be > 0 and --steps >= 1")
        times = np.linspace(0.0, args.t_max, args.steps + 1)
        t0 = time.perf_counter()
        series = mpsync.evolve(system, times, initial=args.initial, method=args.method, **opts)
        if args.save:
            np.savez(args.save, times=series.times, sz=series.sz, correlations=series.correlations,
                     zz=series.zz)
        if args.json:
            out = series.to_dict()
            out.setdefault("seconds", time.perf_counter() - t0)
            print(json.dumps(out))
        else:
            print(f"{'t':>10} {'mean sz':>12} {'Z_Q^2':>12}")
            for t, s, z in zip(series.times, np.mean(series.sz, axis=-1), np.atleast_1d(series.ZQ2)):
                print(f"{t:10.4g} {s:12.6g} {z:12.6g}")
        return 0
    if args.command == "sweep":
        from .sweeps import run_spec_file

        _, out = run_spec_file(args.spec, scheduler=args.scheduler, out=args.out)
        print(f"sweep written to {out}")
        return 0
    if args.command == "figure":
        from .figures import run_figure

        info = run_figure(args.name, quick=args.quick, out_dir=args.out)
        failed = [c for c in info.get("checks", []) if not c[1]]
        return 1 if failed else 0
    if args.command == "validate":
        from .validate import run_validation

        ok = run_validation(quick=args.quick, out=args.out)
        print(f"agreement table written to {args.out}")
        return 0 if ok else 1
    build_parser().print_help()
    return 2


def main(argv=None) -> int:
    """Entry point of the ``mpsync`` console script."""
    from .errors import MpsyncError

    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except _UsageError as exc:
        print(f"{exc} (see 'mpsync --help')", file=sys.stderr)
        return 2
    except TypeError as exc:
        # An unknown solver option is a user error; any other TypeError is a bug.
        if "keyword argument" not in str(exc):
            raise
        print(f"mpsync: error: {exc} (unknown option for --method {args.method})", file=sys.stderr)
        return 2
    except (MpsyncError, ValueError, MemoryError, FileNotFoundError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"mpsync: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mpsync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
