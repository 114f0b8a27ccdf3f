"""Parameter sweeps: a grid over any DipoleSystem or solver parameter.

Every grid point builds one :class:`~mpsync.model.DipoleSystem`, solves its
steady state with the chosen method (``mpsync.steady_state``) and reduces the
result to a few observables. The points run through
:func:`mpsync.parallel.parallel_map` (local processes by default, a Dask
``Client`` or a scheduler address ``"tcp://host:port"``), finished points are
cached on disk one small JSON file per point and skipped on a rerun, and the
results come back as a labelled :class:`xarray.Dataset` with one dimension per
grid parameter.

Units: Gamma = 1 (rates W, f_eff, delta in units of Gamma), lengths in units of
the wavelength lambda, angles in radians (``theta="magic"`` is arccos(1/sqrt 3)).

The system spec
---------------
``base`` is either a callable ``base(**params) -> DipoleSystem`` or a dict with
a ``model`` key naming a :class:`DipoleSystem` constructor and its arguments::

    dict(model="chain", n=6, spacing=0.1, theta="magic", W=2.0)
    dict(model="all_to_all", n=20, f_eff=10.0, W=5.0)
    dict(model="power_law", shape=[30, 30], alpha=1.0, W=2.0)
    dict(model="from_positions", positions=[[0, 0, 0], [0.1, 0, 0]], dipole=[0, 0, 1], W=1.0)

Derived parameters apply to every model after construction:
``W_over_feff`` sets W = W_over_feff * f_eff (the optimum of a large all-to-all
ensemble lies near 1/2), ``W_over_Wopt`` sets W = W_over_Wopt * the optimal
pump of the all-to-all ensemble with the same N and f_eff (exact, so it follows
the finite-N optimum: a pump grid that brackets the peak at every f_eff), and
``delta_spread`` with ``delta_seed`` draws detunings uniform in
[-delta_spread/2, delta_spread/2].

A grid name that is an argument of the constructor (or a derived parameter) is
a system parameter; ``method`` selects the solver; every other name is passed to
the solver as a keyword option (e.g. ``max_bond`` for ``method="mpo"``).

Observables
-----------
``observables`` lists names among ``ZQ``, ``ZQ2``, ``sz_mean``, ``sz`` (per site),
``correlations`` (stored as ``correlations_re`` and ``correlations_im``, dims
site x site2), ``zz``, ``mutual_information`` and ``discord`` (pair (0, 1), bits),
``cluster_ZQ`` (dim ``d`` = 2 .. row length), ``Z`` (mean-field order parameter),
or ``(name, callable)`` pairs / a dict of callables ``fn(result) -> float or 1-D
array``. ``seconds`` and every numeric solver diagnostic (``residual``, ...) are
always stored, ``warning`` as a string; error estimates as ``ZQ_err`` (the MPO
ladder's error bar), ``ZQ2_err`` and ``sz_mean_err`` (also the standard errors of
stochastic solvers).

Examples
--------
>>> from mpsync.sweeps import sweep
>>> ds = sweep(dict(model="all_to_all", n=4, f_eff=3.0, W=1.0),
...            {"W": [0.5, 1.5]}, method="exact", progress=False, executor="serial")
>>> ds.ZQ.dims
('W',)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .errors import InvalidSystemError, MpsyncError

__all__ = ["sweep", "build_system", "point_key", "save_dataset", "load_dataset", "run_spec_file",
           "expand_grid_values", "DEFAULT_OBSERVABLES", "MODELS", "RUN_KEYS"]

#: Observables stored by default.
DEFAULT_OBSERVABLES = ("ZQ", "ZQ2", "sz_mean")

#: Constructors reachable from a dict spec's ``model`` key (hyphens work too: "all-to-all").
#: Parameters applied after construction, valid for every model (``mpsync.builder``).
from .builder import DERIVED, MODELS  # noqa: E402

_CACHE_VERSION = 1

_EXTRA_DIMS = {"sz": ("site",), "correlations_re": ("site", "site2"),
               "correlations_im": ("site", "site2"), "zz": ("site", "site2"), "cluster_ZQ": ("d",)}


# ---------------------------------------------------------------------- systems
def _system_parameter_names(base) -> tuple[set, bool]:
    """Names accepted as system parameters and whether any name is accepted."""
    from .builder import parameter_names

    if callable(base):
        sig = inspect.signature(base)
        var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        return set(sig.parameters) | set(DERIVED), var_kw
    if not isinstance(base, dict) or "model" not in base:
        raise InvalidSystemError("base must be a callable(**params) -> DipoleSystem or a dict with a "
                                 f"'model' key (one of {', '.join(MODELS)}), got {base!r}")
    return parameter_names(base["model"]), False


def split_parameters(base, params: dict):
    """Split one point's parameters into (system params, method or None, solver options)."""
    names, anything = _system_parameter_names(base)
    system, options, method = {}, {}, None
    for k, v in params.items():
        if k == "method":
            method = v
        elif k in names or anything:
            system[k] = v
        else:
            options[k] = v
    return system, method, options


def build_system(base, **params):
    """The DipoleSystem of one sweep point.

    Parameters
    ----------
    base : dict or callable
        A spec ``dict(model=..., **constructor_args)`` (see :mod:`mpsync.builder`)
        or ``callable(**params)``.
    **params
        Overrides of the spec, including the derived ``W_over_feff``,
        ``delta_spread`` and ``delta_seed``.

    Returns
    -------
    DipoleSystem
    """
    from .builder import build_system as _build

    params = dict(params)
    if not callable(base):
        spec = {**base, **params}
        return _build(spec.pop("model"), **spec)
    from .builder import apply_derived

    derived = {k: params.pop(k) for k in DERIVED if k in params}
    return apply_derived(base(**params), **derived)


def _check_point_options(base, points, method, solver_options):
    """Check every point's method and solver options against the declared options."""
    from .solvers import check_options

    if isinstance(base, dict):  # a typo in [system] fails here, not in a worker
        build_system(base, **split_parameters(base, points[0])[0])
    seen = set()
    for p in points:
        _, m, opts = split_parameters(base, p)
        m = m or method
        opts = {**solver_options, **opts}
        key = (str(m), json.dumps(_canonical(opts), sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        check_options(m, "steady_state", opts)


# ---------------------------------------------------------------------- hashing
def _canonical(obj):
    """A JSON-friendly, deterministic form of a parameter value."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": _canonical(obj.tolist()), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return _canonical(obj.item())
    if isinstance(obj, complex):
        return {"re": obj.real, "im": obj.imag}
    if isinstance(obj, float):
        return repr(obj) if not math.isfinite(obj) else obj
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if callable(obj):
        name = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
        try:
            src = hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]
        except (OSError, TypeError):
            src = ""
        return {"__callable__": name, "source": src}
    return repr(obj)


def point_key(base, params, method, solver_options, observables) -> str:
    """Hash of everything that determines one point's result (the cache file name)."""
    blob = json.dumps({"v": _CACHE_VERSION, "base": _canonical(base), "params": _canonical(params),
                       "method": str(method), "options": _canonical(solver_options or {}),
                       "observables": _observable_names(observables)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _observable_names(observables):
    out = []
    for o in _normalise_observables(observables):
        out.append(o if isinstance(o, str) else [o[0], _canonical(o[1])])
    return out


def _normalise_observables(observables):
    if isinstance(observables, dict):
        return [(k, v) for k, v in observables.items()]
    out = []
    for o in observables:
        if isinstance(o, str):
            out.append(o)
        elif isinstance(o, (tuple, list)) and len(o) == 2 and callable(o[1]):
            out.append((str(o[0]), o[1]))
        else:
            raise ValueError(f"observable {o!r} is neither a name nor a (name, callable) pair")
    return out


# ---------------------------------------------------------------------- one point
def _value(v):
    """(dims-free) JSON form of an observable value."""
    a = np.asarray(v)
    if a.dtype.kind in "US":
        return {"kind": "str", "data": str(a)}
    a = np.real_if_close(a)
    if np.iscomplexobj(a):
        raise ValueError("complex observables must be split into real and imaginary parts")
    return {"kind": "float", "data": a.astype(float).tolist()}


def observe(result, observables) -> dict:
    """Reduce a SteadyState to the requested observables and its diagnostics."""
    out = {}
    for o in _normalise_observables(observables):
        if not isinstance(o, str):
            out[o[0]] = _value(o[1](result))
            continue
        if o == "ZQ":
            out["ZQ"] = _value(float(result.ZQ))
        elif o == "ZQ2":
            out["ZQ2"] = _value(float(result.ZQ2))
        elif o == "sz_mean":
            out["sz_mean"] = _value(float(np.mean(result.sz)))
        elif o == "sz":
            out["sz"] = _value(result.sz)
        elif o == "correlations":
            out["correlations_re"] = _value(np.real(result.correlations))
            out["correlations_im"] = _value(np.imag(result.correlations))
        elif o == "zz":
            out["zz"] = _value(result.zz)
        elif o == "mutual_information":
            out["mutual_information"] = _value(result.mutual_information(0, 1) if result.n > 1 else np.nan)
        elif o == "discord":
            out["discord"] = _value(result.discord(0, 1) if result.n > 1 else np.nan)
        elif o == "Z":
            out["Z"] = _value(float(result.Z))
        elif o == "cluster_ZQ":
            cols = (result.system.lattice_shape or (result.n,))[-1]
            out["cluster_ZQ"] = _value([result.cluster_ZQ(d) for d in range(2, cols + 1)])
        else:
            raise ValueError(f"unknown observable {o!r}; use ZQ, ZQ2, sz_mean, sz, correlations, zz, "
                             "mutual_information, discord, Z, cluster_ZQ or a (name, callable) pair")
    for k, v in result.diagnostics.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = _value(float(v))
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = _value(float(v))
        elif k == "warning":
            out[k] = {"kind": "str", "data": str(v)}
    err = result.errors or {}
    if "ZQ" in err:
        out["ZQ_err"] = _value(float(np.asarray(err["ZQ"])))
    if "ZQ2" in err:
        out["ZQ2_err"] = _value(float(np.asarray(err["ZQ2"])))
    if "sz" in err:
        e = np.asarray(err["sz"], dtype=float)
        out["sz_mean_err"] = _value(float(np.sqrt(np.sum(e ** 2)) / e.size))
    out.setdefault("seconds", _value(np.nan))
    return out


def _solve_point(task, params, x0=None):
    """(reduced values, the SteadyState or None) of one point; ``x0`` a previous result."""
    from .solvers import steady_state

    t0 = time.perf_counter()
    system_params, method, options = split_parameters(task["base"], params)
    method = method or task["method"]
    options = {**task["solver_options"], **options}
    try:
        system = build_system(task["base"], **system_params)
        # a previous result is a start only for the same method and the same N
        if x0 is not None and x0.method == _method_name(method) and x0.system.n == system.n:
            options["x0"] = x0
        result = steady_state(system, method=method, **options)
        values = observe(result, task["observables"])
        if not np.isfinite(values["seconds"]["data"]):
            values["seconds"] = _value(time.perf_counter() - t0)
        return {"ok": True, "values": values}, result
    except Exception as exc:  # noqa: BLE001 - reported per point, or re-raised by the parent
        if task["on_error"] == "raise":
            raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, None


def _method_name(method):
    from .solvers import get_solver

    return getattr(get_solver(method), "METHOD", str(method))


def _compute_point(task):
    """Worker: build the system, solve, reduce. Module level so that it pickles."""
    return _solve_point(task, task["params"])[0]


def _compute_group(task):
    """Worker: the points of one group in order, each from the previous result with ``warm_start``."""
    out, previous = [], None
    for params in task["group_points"]:
        res, result = _solve_point(task, params, previous if task["warm_start"] else None)
        out.append(res)
        previous = result
    return out


# ---------------------------------------------------------------------- cache
def _cache_path(cache_dir, key):
    return Path(cache_dir) / f"{key}.json"


def _read_cache(path):
    try:
        with open(path) as fh:
            data = json.load(fh)
        return data["values"]
    except (OSError, ValueError, KeyError):
        return None


def _write_cache(path, params, values):
    """Write one point atomically (temporary file, then rename). SIGINT and SIGTERM wait
    until the point is written, so an interrupted sweep keeps every finished point."""
    import signal

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        with open(tmp, "w") as fh:
            json.dump({"params": _canonical(params), "values": values}, fh)
        os.replace(tmp, path)  # atomic: a killed sweep never leaves half a file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# ---------------------------------------------------------------------- the sweep
def _coord(values):
    """Grid values as an xarray coordinate (numbers stay numbers, the rest strings)."""
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
        a = np.asarray(values)
        return a if a.dtype.kind in "iuf" else a.astype(float)
    return np.asarray([v if isinstance(v, str) else json.dumps(_canonical(v)) for v in values])


def sweep(base, grid, method="exact", solver_options=None, executor=None, workers=None,
          cache_dir=None, progress=True, observables=DEFAULT_OBSERVABLES, on_error="raise",
          scheduler_timeout=None, group=None, warm_start=False):
    """Steady states over a grid of system and solver parameters.

    Parameters
    ----------
    base : dict or callable
        ``dict(model="chain", n=6, spacing=0.1, theta="magic", W=2.0)`` (any
        :data:`MODELS` constructor and its arguments) or ``callable(**params)``
        returning a DipoleSystem (module level, so that it pickles).
    grid : dict
        ``name -> list of values``; the dataset's dimensions, in this order.
        System parameters, ``method``, or solver options.
    method : str
        Solver (``mpsync.METHODS``) unless ``method`` is a grid dimension.
    solver_options : dict, optional
        Keyword options for every point (e.g. ``dict(max_bond=64)``).
    executor : None, "local", "serial", dask Client or "tcp://host:port"
        Where the points run (:func:`mpsync.parallel.parallel_map`).
    workers : int, optional
        Local processes.
    cache_dir : str or Path, optional
        One JSON file per finished point, named by :func:`point_key`; points
        found there are not recomputed. ``None`` disables the cache.
    progress : bool
        tqdm progress bar.
    observables : sequence
        See the module docstring.
    on_error : {"raise", "nan"}
        ``"nan"`` stores NaN and the message in the ``error`` variable (failed
        points are not cached, so a rerun retries them).
    scheduler_timeout : float, optional
        Seconds to wait for a Dask scheduler given by address (default 5).
    group : str, optional
        A grid dimension whose points run one after another in one task (in
        grid order) instead of as separate tasks, so that a solver can reuse
        work between them: the exact solver keeps everything but the pump
        between systems that differ only in W, so ``group="W"`` (or
        ``"W_over_feff"``, ``"W_over_Wopt"``) builds its operator once per
        group. The progress bar counts groups, and the points of a group are
        cached when the group finishes (an interrupt loses at most the group
        in progress).
    warm_start : bool
        With ``group``: each point starts from the previous point's result
        (the method's ``x0`` option; the exact and cumulant solvers take one)
        when both have the same method and N. For the exact solver this only
        saves iterations; the cumulant solver given ``x0`` also runs plain
        Newton from it and skips its symmetric reduction, so along a threshold
        it may follow another branch than a cold start.

    Before any point runs, the spec, the solver options (against each method's
    declared options) and ``cache_dir`` (writable) are checked. An interrupt
    (Ctrl-C, or SIGTERM from the ``mpsync`` command) stops every worker; the
    points finished so far are in the cache, and a rerun computes only the rest.

    Returns
    -------
    xarray.Dataset
        Dimensions: the grid names (plus ``site``, ``site2``, ``d`` for array
        observables). Attributes: ``method``, ``base`` and ``solver_options``
        (JSON), ``points_computed``, ``points_cached``, ``points_failed``.
    """
    import itertools

    import xarray as xr

    if on_error not in ("raise", "nan"):
        raise ValueError("on_error must be 'raise' or 'nan'")
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict name -> list of values")
    grid = {str(k): list(np.atleast_1d(v)) if not isinstance(v, (list, tuple)) else list(v)
            for k, v in grid.items()}
    for k, v in grid.items():
        if not v:
            raise ValueError(f"grid parameter {k!r} has no values")
    solver_options = dict(solver_options or {})
    observables = tuple(_normalise_observables(observables))
    names = list(grid)
    points = [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]
    # Validate the spec before any work: a typo should fail at once, not in a worker.
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        raise MpsyncError(f"workers must be an integer >= 1, got {workers!r}")
    _check_point_options(base, points, method, solver_options)
    if group is not None and group not in grid:
        raise MpsyncError(f"group={group!r} is not a grid dimension; use one of {', '.join(names)}")
    if warm_start:
        from .solvers import accepts_option

        if group is None:
            raise MpsyncError("warm_start=True needs group=<a grid dimension> (the order of the warm starts)")
        for m in sorted({str(split_parameters(base, p)[1] or method) for p in points}):
            if not accepts_option(m, "x0"):
                raise MpsyncError(f"warm_start=True needs a method with an x0 option; {m!r} has none "
                                  "(exact and cumulant do)")
    if cache_dir is not None:
        from .errors import check_writable

        check_writable(Path(cache_dir) / "probe.json", "cache folder", make_parents=True)

    keys = [point_key(base, p, method, solver_options, observables) for p in points]
    results = [None] * len(points)
    todo = []
    for i, key in enumerate(keys):
        if cache_dir is not None:
            cached = _read_cache(_cache_path(cache_dir, key))
            if cached is not None:
                results[i] = {"ok": True, "values": cached}
                continue
        todo.append(i)
    n_cached = len(points) - len(todo)

    common = {"base": base, "method": method, "solver_options": solver_options,
              "observables": observables, "on_error": on_error}
    shape = tuple(len(grid[k]) for k in names)
    if group is None:
        members = [[i] for i in todo]
        tasks = [{**common, "params": points[i]} for i in todo]
        worker = _compute_point
    else:
        # one task per combination of the other dimensions, its points in grid order
        gi = names.index(group)
        buckets = {}
        for i in todo:
            idx = np.unravel_index(i, shape)
            buckets.setdefault(idx[:gi] + idx[gi + 1:], []).append(i)
        members = list(buckets.values())
        tasks = [{**common, "group_points": [points[i] for i in m], "warm_start": bool(warm_start)}
                 for m in members]
        worker = _compute_group

    def on_result(j, res):
        for i, r in zip(members[j], res if group is not None else [res]):
            results[i] = r
            if cache_dir is not None and r["ok"]:
                _write_cache(_cache_path(cache_dir, keys[i]), points[i], r["values"])

    if tasks:
        from .parallel import parallel_map

        desc = f"sweep {method}" + (f" ({n_cached} cached)" if n_cached else "")
        if group is not None:
            desc += f", groups along {group}"
        parallel_map(worker, tasks, executor=executor, workers=workers, progress=progress,
                     description=desc, on_result=on_result, scheduler_timeout=scheduler_timeout)

    var_shapes, var_kinds = {}, {}
    for r in results:
        for name, v in (r["values"].items() if r["ok"] else ()):
            var_kinds.setdefault(name, v["kind"])
            s = np.shape(v["data"]) if v["kind"] == "float" else ()
            old = var_shapes.get(name, s)
            if len(old) != len(s):
                raise MpsyncError(f"observable {name!r} changes rank across the grid")
            var_shapes[name] = tuple(max(a, b) for a, b in zip(old, s))
    data = {}
    for name, extra in var_shapes.items():
        if var_kinds[name] == "str":
            arr = np.full(shape, "", dtype=object)
        else:
            arr = np.full(shape + extra, np.nan)
        for idx, r in zip(itertools.product(*[range(s) for s in shape]), results):
            if not r["ok"] or name not in r["values"]:
                continue
            v = r["values"][name]["data"]
            if var_kinds[name] == "str":
                arr[idx] = v
            else:
                v = np.asarray(v, dtype=float)
                arr[idx + tuple(slice(0, s) for s in v.shape)] = v
        if var_kinds[name] == "str":
            arr = arr.astype(str)
        dims = _EXTRA_DIMS.get(name, tuple(f"{name}_dim{k}" for k in range(len(extra))))
        data[name] = (names + list(dims), arr)
    failed = [(i, r["error"]) for i, r in enumerate(results) if not r["ok"]]
    if failed:
        err = np.full(shape, "", dtype=object)
        for i, msg in failed:
            err[np.unravel_index(i, shape)] = msg
        data["error"] = (names, err.astype(str))
    coords = {k: _coord(grid[k]) for k in names}
    if "cluster_ZQ" in var_shapes:
        coords["d"] = np.arange(2, 2 + var_shapes["cluster_ZQ"][0])
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({
        "method": str(method),
        "base": json.dumps(_canonical(base)),
        "solver_options": json.dumps(_canonical(solver_options)),
        "points_computed": len(todo) - len(failed),
        "points_cached": n_cached,
        "points_failed": len(failed),
        "units": "Gamma = 1, lengths in units of lambda, angles in radians",
    })
    return ds


# ---------------------------------------------------------------------- files
def _engine(hdf5: bool = False):
    """The first NetCDF writer available: h5netcdf (needs h5py), netCDF4, scipy (NetCDF3)."""
    import importlib.util

    if importlib.util.find_spec("h5py") is not None and importlib.util.find_spec("h5netcdf") is not None:
        return "h5netcdf"
    if importlib.util.find_spec("netCDF4") is not None:
        return "netcdf4"
    if hdf5:
        raise MpsyncError("writing HDF5 needs h5py (pip install h5py) or netCDF4; use a .nc path")
    return "scipy"


def save_dataset(ds, path):
    """Save a sweep dataset to ``.nc`` (NetCDF) or ``.h5``/``.hdf5`` (NetCDF4, i.e. HDF5).

    Uses h5netcdf when h5py is installed, else netCDF4, else scipy (NetCDF3, ``.nc`` only).
    Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".h5", ".hdf5", ".nc4"):
        raise ValueError(f"unknown dataset format {suffix!r}: use .nc or .h5")
    engine = _engine(hdf5=suffix != ".nc")
    ds.to_netcdf(path, engine=engine)
    return path


def load_dataset(path):
    """Load a dataset written by :func:`save_dataset` (fully into memory)."""
    import xarray as xr

    with xr.open_dataset(path, engine=_engine(hdf5=Path(path).suffix.lower() != ".nc")) as ds:
        return ds.load()


def expand_grid_values(values):
    """Grid values from a TOML entry: a list, or a table ``{start, stop, num}`` (linspace),
    ``{start, stop, num, log = true}`` (logspace of the bounds) or ``{start, stop, step}`` (arange)."""
    if isinstance(values, dict):
        if "num" in values:
            a, b, n = float(values["start"]), float(values["stop"]), int(values["num"])
            if values.get("log", False):
                return np.geomspace(a, b, n).tolist()
            return np.linspace(a, b, n).tolist()
        if "step" in values:
            return np.arange(float(values["start"]), float(values["stop"]) + 1e-12 * abs(values["step"]),
                             float(values["step"])).tolist()
        raise ValueError(f"grid table {values!r} needs start, stop and num (or step)")
    if isinstance(values, (list, tuple)):
        return list(values)
    return [values]


#: keys of the [run] section of a spec file
RUN_KEYS = ("observables", "cache_dir", "out", "workers", "scheduler", "scheduler_timeout", "on_error",
            "group", "warm_start")


def run_spec_file(path, scheduler=None, out=None, progress=True, scheduler_timeout=None):
    """Run the sweep described by a TOML file (``mpsync sweep spec.toml``).

    The spec format::

        [system]              # a DipoleSystem constructor and its arguments
        model = "chain"       # chain | all_to_all | power_law | from_positions | from_matrices
        n = 6
        spacing = 0.1         # units of lambda
        theta = "magic"       # radians or "magic"
        W = 2.0               # units of Gamma

        [grid]                # one dimension per entry, in this order
        W = [0.5, 1.0, 2.0, 4.0]                      # a list
        spacing = {start = 0.05, stop = 0.5, num = 10}  # linspace (add log = true: geomspace)

        [solver]
        method = "exact"      # any mpsync method; other keys are solver options
        tol = 1e-10

        [run]                 # all optional
        observables = ["ZQ", "ZQ2", "sz_mean", "mutual_information"]
        cache_dir = ".mpsync-cache/my-sweep"   # default: .mpsync-cache/<spec name>
        out = "my-sweep.nc"   # default: the spec path with .nc; .h5 for HDF5
        workers = 2
        scheduler = "tcp://host:port"          # a Dask cluster; --scheduler overrides
        scheduler_timeout = 5                  # seconds to wait for the scheduler
        on_error = "raise"    # or "nan"
        group = "W"           # run the W points of each group in one worker, in order
        warm_start = true     # ... each from the previous one (exact, cumulant)

    Unknown keys in ``[run]`` and unknown solver options are refused before any work,
    and so are an ``out`` or ``cache_dir`` that cannot be written.

    Relative paths in the spec are relative to the spec file; ``out`` given as an
    argument (the CLI's ``--out``) is relative to the working directory.

    Returns
    -------
    (xarray.Dataset, Path)
    """
    import tomllib

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except FileNotFoundError:
        raise MpsyncError(f"sweep spec {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MpsyncError(f"sweep spec {path} is not valid TOML: {exc}") from None
    unknown = set(spec) - {"system", "grid", "solver", "run"}
    if unknown:
        raise MpsyncError(f"unknown sections {sorted(unknown)} in {path}; use system, grid, solver, run")
    if "system" not in spec or "grid" not in spec:
        raise MpsyncError(f"sweep spec {path} needs a [system] and a [grid] section")
    base = dict(spec["system"])
    if "model" not in base:
        raise MpsyncError(f"[system] in {path} needs model = one of {', '.join(MODELS)}")
    grid = {k: expand_grid_values(v) for k, v in spec["grid"].items()}
    solver = dict(spec.get("solver", {}))
    method = solver.pop("method", "exact")
    run = dict(spec.get("run", {}))
    for key in run:
        if key not in RUN_KEYS:
            import difflib

            close = difflib.get_close_matches(key, RUN_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise MpsyncError(f"unknown key {key!r} in [run] of {path}; {hint}use {', '.join(RUN_KEYS)}")
    here = path.parent
    cache_dir = Path(run.get("cache_dir", Path(".mpsync-cache") / path.stem))
    if not cache_dir.is_absolute():
        cache_dir = here / cache_dir
    if out is not None:
        out = Path(out)  # from the command line: relative to the working directory
    elif "out" in run:
        out = Path(run["out"]) if Path(run["out"]).is_absolute() else here / run["out"]
    else:
        out = path.with_suffix(".nc")
    executor = scheduler or run.get("scheduler")
    if out.suffix.lower() not in (".nc", ".h5", ".hdf5", ".nc4"):
        raise MpsyncError(f"unknown dataset format {out.suffix!r} for {out}: use .nc or .h5")
    from .errors import check_writable

    check_writable(out, "sweep output", make_parents=True)
    timeout = scheduler_timeout if scheduler_timeout is not None else run.get("scheduler_timeout")
    ds = sweep(base, grid, method=method, solver_options=solver, executor=executor,
               workers=run.get("workers"), cache_dir=cache_dir, progress=progress,
               observables=tuple(run.get("observables", DEFAULT_OBSERVABLES)),
               on_error=run.get("on_error", "raise"), scheduler_timeout=timeout,
               group=run.get("group"), warm_start=bool(run.get("warm_start", False)))
    save_dataset(ds, out)
    return ds, out
