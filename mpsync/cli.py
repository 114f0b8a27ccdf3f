"""The ``mpsync`` command.

Sub-commands::

    mpsync demo [--quick] [--out DIR]
    mpsync steady --model chain --n 6 --spacing 0.1 --theta magic --W 2 --method exact --json
    mpsync evolve --model chain --n 6 --spacing 0.1 --W 2 --t-max 10 --steps 50 --json
    mpsync two-time --model chain --n 6 --spacing 0.1 --W 2 --tau-max 10 --pairs 3 --json
    mpsync sweep examples/sweep_spec.toml [--scheduler tcp://host:port] [--out results.nc]
    mpsync figure NAME [--quick] [--out DIR]
    mpsync validate [--quick] [--out validation/agreement.md]

Every user error prints one line (``mpsync: error: ...``) and exits with code 2;
a result that did not converge prints one line (``mpsync: warning: ...``) and
exits with 0. Ctrl-C exits with 130 and SIGTERM with 143, after stopping every
worker process (a sweep's finished points stay in its cache).

A solver gets only the options its method declares
(:func:`mpsync.solvers.declared_options`); a flag the method does not take is
refused with the list of those it does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
import warnings

import numpy as np

__all__ = ["main", "build_parser", "system_from_args", "solver_options"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _float_list(text):
    parts = text.split(",")
    if any(not p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r} (an empty entry)")
    try:
        values = [float(x) for x in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _shape(text):
    try:
        parts = [int(x) for x in text.lower().replace("*", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 30x30 or 200, got {text!r}") from None
    if not parts or any(p < 1 for p in parts) or len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected a shape like 30x30 or 200, got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def _finite(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _positive(text):
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _add_system_args(p):
    g = p.add_argument_group("dipole system (rates in units of Gamma, lengths in units of lambda)")
    g.add_argument("--model", choices=["chain", "all-to-all", "all_to_all", "power-law", "power_law"],
                   default="chain", help="which arrangement (default: chain)")
    g.add_argument("--n", type=_positive_int,
                   help="number of dipoles N (required; power-law: or give --shape)")
    g.add_argument("--spacing", type=_finite, help="chain: spacing in units of lambda (required)")
    g.add_argument("--theta", help="chain: angle of the dipoles to the chain, radians in [-pi, pi], "
                                   "or 'magic' = arccos(1/sqrt 3) (default: magic)")
    g.add_argument("--W", type=_finite, required=True, help="incoherent pump rate W, units of Gamma (required)")
    g.add_argument("--gamma", type=_finite, default=None,
                   help="single-atom decay rate Gamma, the unit of rates (default: 1)")
    g.add_argument("--f-eff", type=_finite, help="all-to-all: f_eff, units of Gamma (f_ab = f_eff/N; required)")
    g.add_argument("--g-eff", type=_finite, help="all-to-all: g_eff, units of Gamma (g_ab = g_eff/N; default: 0)")
    g.add_argument("--alpha", type=_finite, help="power-law: exponent alpha of f_ab = f0 Gamma r^-alpha (required)")
    g.add_argument("--f0", type=_finite, help="power-law: prefactor f0, dimensionless (default: 0.25)")
    g.add_argument("--shape", type=_shape,
                   help="power-law: 200 (chain) or 30x30 (square lattice), unit spacing (default: --n as a chain)")
    g.add_argument("--delta", type=_float_list,
                   help="detunings delta_a, units of Gamma: one value for all, or N comma-separated (default: 0)")
    g.add_argument("--delta-spread", type=_finite,
                   help="detunings drawn uniformly in [-D/2, D/2], units of Gamma (default: none)")
    g.add_argument("--delta-seed", type=int,
                   help="seed of --delta-spread (default: --seed, else 0)")
    g.add_argument("--seed", type=int,
                   help="random seed: of the trajectories or mean-field phases, and of --delta-spread "
                        "unless --delta-seed is given (default: none)")


#: command-line flag -> solver option (flags given are passed only to a method that declares them)
_FLAG_OPTIONS = {"max_bond": "--max-bond", "cutoff": "--cutoff", "tol": "--tol", "ntraj": "--ntraj",
                 "unravelling": "--unravelling", "dt": "--dt", "checkpoint": "--checkpoint",
                 "resume": "--resume", "workers": "--workers", "t_max": "--t-max",
                 "progress": "--progress"}


def _add_solver_args(p, evolve=False):
    g = p.add_argument_group("solver (each flag is passed only to a method that takes it; "
                             "defaults are the method's own)")
    g.add_argument("--method", default="exact",
                   help="exact, permutational, mpo, meanfield, cumulant or trajectories (default: exact)")
    g.add_argument("--max-bond", type=_positive_int,
                   help="mpo: one bond dimension instead of the steady state's ladder 8, 16, 32, ... "
                        "(which stops when two rungs agree in Z_Q within zq_tol = 1e-3 and reports "
                        "that difference as the error bar; --opt zq_tol=... to change it); "
                        "evolve: default 64")
    g.add_argument("--cutoff", type=_finite, help="mpo: singular-value cutoff, relative (default: 1e-10)")
    g.add_argument("--tol", type=_finite,
                   help="convergence tolerance: relative residual (exact), max |d/dt| in units of "
                        "Gamma (meanfield, cumulant), Taylor truncation (trajectories) (default: the method's)")
    g.add_argument("--ntraj", type=_positive_int, help="trajectories: number of trajectories (default: 100)")
    g.add_argument("--unravelling", choices=["jumps", "homodyne", "heterodyne", "diffusion"],
                   help="trajectories: unravelling: photon counting (jumps), one-quadrature "
                        "(homodyne) or two-quadrature detection (heterodyne; 'diffusion' is its "
                        "old name) (default: jumps)")
    g.add_argument("--dt", type=_finite,
                   help="time step, units of 1/Gamma: mpo TDVP (default 0.05), trajectories "
                        "diffusive step (default 1e-3)")
    g.add_argument("--checkpoint", help="mpo: checkpoint file (.npz) written during the run (default: none)")
    g.add_argument("--resume", help="mpo: resume from this checkpoint file (default: none)")
    g.add_argument("--workers", type=int,
                   help="trajectories: parallel worker processes, >= 1 (default: the CPU count)")
    g.add_argument("--progress", action="store_true",
                   help="show a progress bar (or, cumulant, a line per Newton step) on stderr (default: off)")
    g.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="any other option of the method, VALUE parsed as JSON when possible; repeatable "
                        "(default: none)")
    if not evolve:
        g.add_argument("--t-max", type=_finite,
                       help="mpo, meanfield, trajectories: longest evolution time toward the steady state, "
                            "units of 1/Gamma (default: the method's)")


def build_parser():
    parser = _Parser(prog="mpsync", description="Synchronization of interacting quantum dipoles. "
                     "Units: Gamma = 1 (rates), lambda = 1 (lengths), angles in radians.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("demo", help="the representative study: Z_Q vs W, a chain vs all-to-all")
    p.add_argument("--quick", action="store_true", help="a smaller, faster version (default: off)")
    p.add_argument("--out", default=".", help="output folder for the PNG and CSV (default: .)")

    for name, helptext in (("steady", "steady state of one system"), ("evolve", "time evolution")):
        p = sub.add_parser(name, help=helptext)
        _add_system_args(p)
        _add_solver_args(p, evolve=name == "evolve")
        p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
        p.add_argument("--save", help="save the full arrays to this .npz file, checked writable before "
                                      "the run (default: none)")
        if name == "evolve":
            p.add_argument("--t-max", type=_positive, required=True,
                           help="final time, units of 1/Gamma (required)")
            p.add_argument("--steps", type=_positive_int, default=50,
                           help="number of time intervals; outputs at steps + 1 times (default: 50)")
            p.add_argument("--initial", default="down",
                           help="initial product state: down, up or x (default: down)")

    p = sub.add_parser("two-time", help="steady-state two-time functions Z_ab(tau), <J+(tau) J-(0)>, "
                                         "fits and the emission spectrum")
    _add_system_args(p)
    _add_solver_args(p, evolve=True)
    p.add_argument("--tau-max", type=_positive, required=True,
                   help="largest delay tau, units of 1/Gamma (required)")
    p.add_argument("--steps", type=_positive_int, default=200,
                   help="number of delay intervals; outputs at steps + 1 delays from 0 (default: 200)")
    p.add_argument("--pairs", default="central",
                   help="'central' (dipole N//2 against every other), a site b (every (a, b)), "
                        "a list like 0-1,2-5, or 'none' (<J+(tau) J-(0)> only) (default: central)")
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    p.add_argument("--save", help="save the full arrays to this .npz file, checked writable before "
                                  "the run (default: none)")

    p = sub.add_parser("sweep", help="parameter sweep from a TOML spec")
    p.add_argument("spec", help="TOML file, e.g. examples/sweep_spec.toml")
    p.add_argument("--scheduler", help="Dask scheduler address tcp://host:port (default: local processes)")
    p.add_argument("--scheduler-timeout", type=_positive, default=None,
                   help="seconds to wait for the Dask scheduler (default: 5)")
    p.add_argument("--out", help="output NetCDF (.nc) or HDF5 (.h5) file (default: the spec path with .nc)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")

    p = sub.add_parser("figure", help="reproduce one figure of the seed paper")
    p.add_argument("name", help="2a, 2b, 2c, 2d, 2e, 3a, 3b, 4, S1, S2, S3, length (Z_Q vs chain length), linewidth (the emission linewidth vs chain length), 4mpo (Fig. 4's a = 0.05 row at N = 24 with the MPO) or S1mpo (Fig. S1's Gamma/gamma for the N = 70 chain with the MPO), the last four beyond the paper")
    p.add_argument("--quick", action="store_true", help="smaller systems, fewer points (default: off)")
    p.add_argument("--out", help="output folder (default: validation/output)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="BLAS threads of this run (threadpoolctl); give 1 to each of several runs "
                        "sharing one --out, which then split the points (default: the BLAS library's own)")

    p = sub.add_parser("validate", help="cross-solver agreement table")
    p.add_argument("--quick", action="store_true", help="smaller systems (default: off)")
    p.add_argument("--out", default="validation/agreement.md",
                   help="Markdown file written (default: validation/agreement.md)")
    return parser


# ---------------------------------------------------------------------- system
_MODEL_FLAGS = {
    "chain": ("n", "spacing", "theta"),
    "all_to_all": ("n", "f_eff", "g_eff"),
    "power_law": ("n", "alpha", "f0", "shape"),
}


def system_from_args(args):
    """Build the :class:`~mpsync.DipoleSystem` described by the command-line options
    (through :func:`mpsync.builder.build_system`, as the sweeps do)."""
    from .builder import build_system, canonical_model
    from .errors import InvalidSystemError

    model = canonical_model(args.model)
    for name in ("spacing", "theta", "f_eff", "g_eff", "alpha", "f0", "shape"):
        if getattr(args, name) is not None and name not in _MODEL_FLAGS[model]:
            raise InvalidSystemError(f"--{name.replace('_', '-')} does not apply to --model {args.model}; "
                                     f"it takes --{', --'.join(f.replace('_', '-') for f in _MODEL_FLAGS[model])}")
    params = {k: getattr(args, k) for k in _MODEL_FLAGS[model]}
    if model == "chain" and params["theta"] is None:
        params["theta"] = "magic"
    if model != "power_law" and args.n is None:
        raise InvalidSystemError(f"--n is required for --model {args.model}")
    if model == "power_law" and args.n is None and args.shape is None:
        raise InvalidSystemError("--n or --shape is required for --model power-law")
    for flag, key in (("--spacing", "spacing"), ("--f-eff", "f_eff"), ("--alpha", "alpha")):
        if key in params and params[key] is None:
            raise InvalidSystemError(f"{flag} is required for --model {args.model}")
    n = args.n if args.n is not None else int(np.prod(np.atleast_1d(args.shape)))
    params.update(W=args.W, gamma=args.gamma)
    if args.delta is not None and args.delta_spread is not None:
        raise InvalidSystemError("give either --delta or --delta-spread, not both")
    if args.delta is not None:
        if len(args.delta) not in (1, n):
            raise InvalidSystemError(f"--delta lists {len(args.delta)} detunings for N = {n} dipoles "
                                     "(give one value or N)")
        params["delta"] = args.delta[0] if len(args.delta) == 1 else np.asarray(args.delta)
    if args.delta_spread is not None:
        params["delta_spread"] = args.delta_spread
        params["delta_seed"] = args.delta_seed if args.delta_seed is not None else args.seed
    elif args.delta_seed is not None:
        raise InvalidSystemError("--delta-seed needs --delta-spread")
    return build_system(model, **params)


# ---------------------------------------------------------------------- options
def _parse_opt(item):
    from .errors import InvalidOptionError

    if "=" not in item:
        raise InvalidOptionError(f"--opt expects KEY=VALUE, got {item!r}")
    key, value = item.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise InvalidOptionError(f"--opt expects KEY=VALUE, got {item!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


_COMMANDS = {"steady_state": "steady", "evolve": "evolve", "two_time": "two-time"}


def solver_options(args, entry: str = "steady_state") -> dict:
    """The solver options given on the command line that ``args.method`` declares for ``entry``.

    A flag the method does not take raises :class:`~mpsync.errors.InvalidOptionError`
    naming the method's options (``--seed`` only when nothing uses it); ``--opt`` keys
    are checked by :func:`mpsync.solvers.check_options`.
    """
    from .errors import InvalidOptionError
    from .solvers import _canonical_method, accepts_option, declared_options

    method = _canonical_method(args.method)
    given = {k: getattr(args, k, None) for k in _FLAG_OPTIONS}
    if entry == "evolve":
        given.pop("t_max")  # evolve's --t-max sets the output times
    given["progress"] = True if args.progress else None
    opts = {}
    for key, value in given.items():
        if value is None:
            continue
        if not accepts_option(method, key, entry):
            takes = ", ".join(sorted(declared_options(method, entry))) or "(none)"
            raise InvalidOptionError(f"{_FLAG_OPTIONS[key]} is not an option of --method {method} "
                                     f"(mpsync {_COMMANDS[entry]}); "
                                     f"its options are: {takes}")
        opts[key] = value
    if args.seed is not None:
        if accepts_option(method, "seed", entry):
            opts["seed"] = args.seed
        elif args.delta_spread is None:
            raise InvalidOptionError(f"--seed is not used: --method {method} takes no seed and no "
                                     "--delta-spread is given")
    for item in args.opt:
        key, value = _parse_opt(item)
        opts[key] = value
    return opts


def pairs_from_args(text):
    """``--pairs``: None (central), an int site, [] (none) or a list of (a, b)."""
    from .errors import InvalidSiteError

    t = str(text).strip().lower()
    if t == "central":
        return None
    if t == "none":
        return []
    try:
        if "-" not in t and "," not in t:
            return int(t)
        out = []
        for item in t.split(","):
            a, b = item.split("-")
            out.append((int(a), int(b)))
        return out
    except ValueError:
        raise InvalidSiteError(f"--pairs expects 'central', a site index, a list like 0-1,2-5 or "
                               f"'none', got {text!r}") from None


def _check_paths(args):
    """Output and input files, before any work."""
    from .errors import check_readable, check_writable

    if getattr(args, "save", None):
        check_writable(args.save, "--save file")
    if getattr(args, "checkpoint", None):
        check_writable(args.checkpoint, "--checkpoint file")
    if getattr(args, "resume", None):
        check_readable(args.resume, "--resume checkpoint")


# ---------------------------------------------------------------------- output
def _print_steady(result):
    print(f"method           {result.method}")
    print(f"N                {result.n}")
    print(f"Z_Q              {float(result.ZQ):.6g}   (Z_Q^2 = {float(result.ZQ2):.6g}, max 1/sqrt(8) = 0.353553)")
    print(f"mean <sz>        {float(np.mean(result.sz)):.6g}")
    for k, v in result.diagnostics.items():
        if isinstance(v, (int, float, str, np.floating, np.integer)):
            print(f"{k:<16} {v}")


def _one_line(text) -> str:
    text = " ".join(str(text).split())
    return text if text else "(no message)"


@contextlib.contextmanager
def _warnings_to_stderr():
    """Every warning of the run as one line on stderr (``mpsync: warning: ...``) when it is
    raised, each distinct line once: one said before a long run is read before it."""
    said = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always")

        def show(message, category, filename, lineno, file=None, line=None):
            text = _one_line(message)
            if text not in said:
                said.add(text)
                print(f"mpsync: warning: {text}", file=sys.stderr, flush=True)

        warnings.showwarning = show
        yield


def _print_two_time(result):
    print(f"method           {result.method}")
    print(f"N                {result.n}")
    print(f"delays           {result.taus.size} from 0 to {result.taus[-1]:g} / Gamma")
    if result.J is not None:
        g, ge = result.linewidth
        sp = result.spectrum()
        peak = float(sp.omega[int(np.argmax(sp.S))])
        print(f"<J+(tau)J-(0)>   at 0: {result.J[0].real:.6g}; linewidth gamma = {g:.4g} +- {ge:.2g} Gamma; "
              f"spectrum peak at omega = {peak:.3g} Gamma (resolution {sp.resolution:.3g}, "
              f"window {sp.window})")
    if result.J_sites is not None and result.taus.size >= 4:
        spread, err = result.frequency_spread
        own = result.errors.get("frequency_spread")
        own = "" if own is None else f" (+- {float(own):.2g} between bond dimensions)"
        print(f"frequency spread sigma_nu of <s+_a(tau)J-(0)> over the dipoles = {spread:.4g} +- {err:.2g}{own} Gamma")
    if len(result.pairs):
        fit = result.fits
        print(f"{'a':>4} {'b':>4} {'Z_ab(0)':>11} {'nu':>10} {'+-':>8} {'gamma':>10} {'+-':>8}")
        for p, (a, b) in enumerate(result.pairs):
            print(f"{a:4d} {b:4d} {result.Z[p, 0].real:11.5g} {fit['nu'][p]:10.4g} {fit['nu_err'][p]:8.2g} "
                  f"{fit['gamma'][p]:10.4g} {fit['gamma_err'][p]:8.2g}")
    print(f"seconds          {result.diagnostics.get('seconds', float('nan')):.3g}")


def _two_time(args):
    import mpsync

    system = system_from_args(args)
    opts = solver_options(args, "two_time")
    pairs = pairs_from_args(args.pairs)
    _check_paths(args)
    taus = np.linspace(0.0, args.tau_max, args.steps + 1)
    with _warnings_to_stderr():
        result = mpsync.two_time(system, taus, method=args.method, pairs=pairs, **opts)
    if args.save:
        result.save(args.save)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        _print_two_time(result)
    return 0


def _solve(args):
    import mpsync

    system = system_from_args(args)
    entry = "steady_state" if args.command == "steady" else "evolve"
    opts = solver_options(args, entry)
    _check_paths(args)
    if args.command == "steady":
        with _warnings_to_stderr():
            result = mpsync.steady_state(system, method=args.method, **opts)
        if args.save:
            result.save(args.save)
        if args.json:
            print(json.dumps(result.to_dict()))
        else:
            _print_steady(result)
        return 0
    times = np.linspace(0.0, args.t_max, args.steps + 1)
    t0 = time.perf_counter()
    with _warnings_to_stderr():
        series = mpsync.evolve(system, times, initial=args.initial, method=args.method, **opts)
    series.diagnostics.setdefault("seconds", time.perf_counter() - t0)
    if args.save:
        series.save(args.save)
    if args.json:
        print(json.dumps(series.to_dict()))
    else:
        print(f"{'t':>10} {'mean sz':>12} {'Z_Q^2':>12}")
        for t, s, z in zip(series.times, np.mean(series.sz, axis=-1), np.atleast_1d(series.ZQ2)):
            print(f"{t:10.4g} {s:12.6g} {z:12.6g}")
    return 0


def _run(args):
    from .errors import check_writable, check_writable_dir

    # output paths first: a run must not be lost to an unwritable folder at the end
    if args.command in ("demo", "figure") and args.out is not None:
        check_writable_dir(args.out, "output folder")
    if args.command == "validate":
        check_writable(args.out, "agreement table", make_parents=True)
    if args.command == "demo":
        from .paper import demo

        demo.run(out_dir=args.out, quick=args.quick)
        return 0
    if args.command in ("steady", "evolve"):
        return _solve(args)
    if args.command == "two-time":
        return _two_time(args)
    if args.command == "sweep":
        from .sweeps import run_spec_file

        _, out = run_spec_file(args.spec, scheduler=args.scheduler, out=args.out,
                               progress=not args.no_progress, scheduler_timeout=args.scheduler_timeout)
        print(f"sweep written to {out}")
        return 0
    if args.command == "figure":
        from .paper.figures import run_figure

        from threadpoolctl import threadpool_limits

        # oversubscribed BLAS (two runs of all cores' threads each on one machine) made the
        # MPO rungs ~9x slower and the ladder stop at its time budget (benchmarks/RESULTS.md);
        # threadpool_limits(None) leaves the threads as they are
        with threadpool_limits(args.threads):
            info = run_figure(args.name, quick=args.quick, out_dir=args.out)
        failed = [c for c in info.get("checks", []) if not c[1]]
        return 1 if failed else 0
    if args.command == "validate":
        from .paper.validate import run_validation

        ok = run_validation(quick=args.quick, out=args.out)
        print(f"agreement table written to {args.out}")
        return 0 if ok else 1
    build_parser().print_help()
    return 2


def main(argv=None) -> int:
    """Entry point of the ``mpsync`` console script."""
    from .errors import MpsyncError
    from .parallel import Terminated, terminate_on_sigterm

    old = None
    try:
        old = terminate_on_sigterm()
    except ValueError:  # not the main thread (e.g. called from a test runner's thread)
        pass
    args = None
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except _UsageError as exc:
        print(f"{_one_line(exc)} (see 'mpsync --help')", file=sys.stderr)
        return 2
    except MpsyncError as exc:
        print(f"mpsync: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (ValueError, MemoryError, OSError) as exc:
        # user input that reached a library check (e.g. a bad value in a sweep spec's grid)
        print(f"mpsync: error: {_one_line(exc) if str(exc).strip() else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        code = 143 if isinstance(exc, Terminated) else 130
        what = "terminated (SIGTERM)" if code == 143 else "interrupted (SIGINT)"
        extra = "; every worker process was stopped"
        if args is not None and args.command == "sweep":
            extra += "; the finished points are in the sweep's cache, rerun to compute the rest"
        elif args is not None and getattr(args, "checkpoint", None):
            extra += f"; the last checkpoint is kept: rerun with --resume {args.checkpoint}"
        print(f"mpsync: {what}{extra}", file=sys.stderr)
        return code
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
