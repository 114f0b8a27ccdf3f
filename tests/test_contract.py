"""The options contract, for every method in METHODS.

Each solver declares its options by the keyword signature of its module-level
``steady_state`` and ``evolve`` (no ``**kwargs``); ``mpsync.steady_state`` /
``mpsync.evolve`` and the CLI accept exactly those. Tiny systems: seconds in all.
"""

import inspect
import json

import numpy as np
import pytest

import mpsync
from mpsync.cli import main
from mpsync.errors import InvalidOptionError
from mpsync.solvers import METHODS, declared_options, get_solver

# a small system each method accepts, its CLI flags, and cheap options (API, CLI)
CASES = {
    "exact": (dict(model="chain", n=3, spacing=0.2, W=2.0), {}, {}),
    "permutational": (dict(model="all_to_all", n=4, f_eff=2.0, W=2.0), {}, {}),
    "mpo": (dict(model="chain", n=3, spacing=0.2, W=2.0), {"max_bond": 8}, {"max_bond": 8}),
    "meanfield": (dict(model="all_to_all", n=4, f_eff=2.0, W=2.0), {}, {}),
    "cumulant": (dict(model="chain", n=3, spacing=0.2, W=2.0), {}, {}),
    "trajectories": (dict(model="chain", n=3, spacing=0.2, W=2.0),
                     {"ntraj": 2, "t_burn": 1.0, "t_avg": 1.0, "workers": 1, "seed": 1},
                     {"ntraj": 2, "workers": 1, "seed": 1}),
}
EVOLVE_OPTS = {"mpo": {"max_bond": 8}, "trajectories": {"ntraj": 2, "workers": 1, "seed": 1}}
TIMES = [0.0, 0.5, 1.0]



def _system(spec):
    from mpsync.builder import build_system

    spec = dict(spec)
    return build_system(spec.pop("model"), **spec)


def _cli_system(spec):
    argv = ["--model", spec["model"].replace("_", "-"), "--n", str(spec["n"]), "--W", str(spec["W"])]
    if "spacing" in spec:
        argv += ["--spacing", str(spec["spacing"])]
    if "f_eff" in spec:
        argv += ["--f-eff", str(spec["f_eff"])]
    return argv


def _cli_opts(opts):
    flags = {"max_bond": "--max-bond", "ntraj": "--ntraj", "workers": "--workers", "seed": "--seed"}
    argv = []
    for k, v in opts.items():
        argv += [flags[k], str(v)] if k in flags else ["--opt", f"{k}={json.dumps(v)}"]
    return argv


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cases_cover_every_method():
    assert set(CASES) == set(METHODS)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("entry", ["steady_state", "evolve"])
def test_options_are_an_explicit_signature(method, entry):
    params = inspect.signature(getattr(get_solver(method), entry)).parameters.values()
    assert not any(p.kind == p.VAR_KEYWORD for p in params), f"{method}.{entry} takes **kwargs"
    assert "t_max" not in declared_options(method, "evolve")


@pytest.mark.parametrize("method", list(METHODS))
def test_api_steady_and_evolve(method):
    spec, opts, _ = CASES[method]
    system = _system(spec)
    ss = mpsync.steady_state(system, method=method, **opts)
    assert ss.method == method and ss.n == system.n
    assert np.all(np.isfinite(ss.sz))
    ts = mpsync.evolve(system, TIMES, method=method, **EVOLVE_OPTS.get(method, {}))
    assert ts.sz.shape == (len(TIMES), system.n)
    np.testing.assert_allclose(ts.sz[0], -1.0, atol=1e-12)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("as_json", [False, True])
def test_cli_steady_and_evolve(capsys, method, as_json):
    spec, _, cli_opts = CASES[method]
    base = _cli_system(spec) + ["--method", method] + (["--json"] if as_json else [])
    code, out, err = run(capsys, "steady", *base, *_cli_opts(cli_opts))
    assert code == 0, err
    if as_json:
        data = json.loads(out)
        assert data["method"] == method and data["N"] == spec["n"]
        for key in ("ZQ", "ZQ2", "sz", "seconds", "diagnostics"):
            assert key in data
    else:
        assert f"method           {method}" in out
    code, out, err = run(capsys, "evolve", *base, "--t-max", "1", "--steps", "2",
                         *_cli_opts(EVOLVE_OPTS.get(method, {})))
    assert code == 0, err
    if as_json:
        data = json.loads(out)
        assert data["times"] == [0.0, 0.5, 1.0] and len(data["ZQ2"]) == 3
        for key in ("method", "N", "sz_mean", "seconds", "diagnostics"):
            assert key in data
    else:
        assert len(out.strip().splitlines()) == 4


@pytest.mark.parametrize("method", list(METHODS))
def test_unknown_option_cli_exit_2_one_line(capsys, method):
    spec, _, _ = CASES[method]
    for command, extra in (("steady", []), ("evolve", ["--t-max", "1", "--steps", "2"])):
        code, out, err = run(capsys, command, *_cli_system(spec), "--method", method, *extra,
                             "--opt", "bogus_option=1")
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert "bogus_option" in lines[0] and method in lines[0]


@pytest.mark.parametrize("method", list(METHODS))
def test_unknown_option_api(method):
    spec, _, _ = CASES[method]
    system = _system(spec)
    with pytest.raises(InvalidOptionError, match=rf"'progres'.*{method}.*did you mean 'progress'"):
        mpsync.steady_state(system, method=method, progres=True)
    with pytest.raises(InvalidOptionError, match="bogus.*its options are"):
        mpsync.evolve(system, TIMES, method=method, bogus=1)


def test_flags_a_method_does_not_take_are_refused(capsys):
    code, out, err = run(capsys, "steady", "--model", "chain", "--n", "3", "--spacing", "0.2", "--W", "2",
                         "--method", "exact", "--max-bond", "8")
    assert code == 2 and "--max-bond is not an option of --method exact" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_values_are_invalid_option_errors():
    s = mpsync.DipoleSystem.chain(3, 0.2, "magic", W=2.0)
    for method, opts in (("exact", {"tol": "abc"}), ("exact", {"tol": -1.0}), ("cumulant", {"tol": [1, 2]}),
                         ("meanfield", {"t_max": "abc"}), ("trajectories", {"ntraj": 2.5}),
                         ("trajectories", {"workers": 0}), ("exact", {"progress": "yes"}),
                         ("cumulant", {"maxiter": float("nan")})):
        with pytest.raises(InvalidOptionError, match=next(iter(opts))):
            mpsync.steady_state(s, method=method, **opts)


def test_declared_options_match_the_signature():
    for method in METHODS:
        for entry in ("steady_state", "evolve"):
            sig = inspect.signature(getattr(get_solver(method), entry))
            skip = {"system"} if entry == "steady_state" else {"system", "times", "initial"}
            named = [k for k, p in sig.parameters.items() if k not in skip and p.kind != p.VAR_KEYWORD]
            assert list(declared_options(method, entry)) == named


def test_non_converged_result_warns_api_and_cli(capsys):
    s = mpsync.DipoleSystem.chain(3, 0.2, "magic", W=2.0)
    with pytest.warns(mpsync.ConvergenceWarning, match="did not converge"):
        ss = mpsync.steady_state(s, method="meanfield", t_max=1.0, tol=1e-15)
    assert ss.diagnostics["converged"] is False
    code, out, err = run(capsys, "steady", "--model", "chain", "--n", "3", "--spacing", "0.2", "--W", "2",
                         "--method", "meanfield", "--opt", "t_max=1", "--opt", "tol=1e-15", "--json")
    assert code == 0
    assert json.loads(out)["diagnostics"]["converged"] is False
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpsync: warning:") and "converge" in lines[0]


def test_a_solver_that_warned_is_not_warned_twice(monkeypatch):
    import warnings

    from mpsync.solvers import exact

    real = exact.steady_state

    def fake(system, **kw):
        r = real(system, **kw)
        r.diagnostics["converged"] = False
        warnings.warn("GMRES stopped", mpsync.ConvergenceWarning)
        return r

    fake.__signature__ = inspect.signature(real)
    monkeypatch.setattr(exact, "steady_state", fake)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mpsync.steady_state(mpsync.DipoleSystem.chain(3, 0.2, "magic", W=2.0), method="exact")
    assert [str(w.message) for w in caught if issubclass(w.category, mpsync.ConvergenceWarning)] == \
        ["GMRES stopped"]
