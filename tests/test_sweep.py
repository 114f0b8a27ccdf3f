"""Tests of the sweep engine (mpsync.sweeps): grid, cache/resume, files, Dask."""

import json
import textwrap

import numpy as np
import pytest

from mpsync import DipoleSystem
from mpsync.errors import InvalidSystemError
from mpsync.sweeps import build_system, load_dataset, run_spec_file, save_dataset, sweep

CALLS = []


def counted_ensemble(n, f_eff, W):
    """Module-level system factory that records its calls (serial executor)."""
    CALLS.append((n, f_eff, W))
    return DipoleSystem.all_to_all(n, f_eff, W)


def test_single_atom_matches_analytic():
    # One dipole: <sz> = (W - Gamma)/(W + Gamma), independent of any solver.
    W = [0.25, 1.0, 3.0]
    ds = sweep(dict(model="all_to_all", n=1, f_eff=0.0, W=1.0), {"W": W}, executor="serial",
               progress=False)
    assert ds.sz_mean.dims == ("W",)
    np.testing.assert_allclose(ds.sz_mean.values, (np.array(W) - 1) / (np.array(W) + 1), atol=1e-10)
    assert np.all(ds.seconds.values >= 0)


def test_exact_grid_matches_permutational_and_method_dimension():
    # method as a grid dimension: two independent solvers on the same all-to-all points.
    ds = sweep(dict(model="all_to_all", n=4, f_eff=4.0, W=1.0),
               {"W": [0.5, 2.0, 4.0], "method": ["exact", "permutational"]},
               executor="serial", progress=False, observables=("ZQ", "ZQ2", "sz_mean", "sz"))
    assert ds.ZQ.dims == ("W", "method") and ds.sz.dims == ("W", "method", "site")
    # (a dict: sel(method=...) is xarray's own keyword)
    ex, pe = ds.sel({"method": "exact"}), ds.sel({"method": "permutational"})
    np.testing.assert_allclose(ex.ZQ2.values, pe.ZQ2.values, atol=1e-9)
    np.testing.assert_allclose(ex.sz.values, pe.sz.values, atol=1e-9)
    # and the sweep's numbers are those of a direct call
    import mpsync

    direct = mpsync.steady_state(DipoleSystem.all_to_all(4, 4.0, 2.0), method="exact")
    assert abs(float(ex.ZQ2.sel(W=2.0)) - float(direct.ZQ2)) < 1e-12


def test_solver_option_dimension_and_derived_parameters():
    ds = sweep(dict(model="chain", n=4, spacing=0.1, theta="magic", W=1.0),
               {"W_over_feff": [0.5], "solver": ["direct", "iterative"]}, executor="serial",
               progress=False)
    np.testing.assert_allclose(ds.ZQ2.sel(solver="direct"), ds.ZQ2.sel(solver="iterative"), atol=1e-8)
    system = build_system(dict(model="chain", n=4, spacing=0.1, theta="magic", W=1.0), W_over_feff=0.5)
    assert abs(system.W - 0.5 * system.f_eff) < 1e-12
    s2 = build_system(dict(model="chain", n=5, spacing=0.1, theta="magic", W=1.0), delta_spread=1.0,
                      delta_seed=3)
    assert np.all(np.abs(s2.delta) <= 0.5) and np.ptp(s2.delta) > 0


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_grouped_warm_started_sweep_equals_independent_points(tmp_path, executor):
    """group + warm_start (the exact solver's pump scan) gives the points of a plain sweep."""
    base = dict(model="chain", n=6, spacing=0.07, theta=0.4, W=1.0)
    grid = {"spacing": [0.07, 0.12], "W_over_feff": [0.5, 0.9, 1.4]}
    opts = dict(solver="iterative")
    plain = sweep(base, grid, solver_options=opts, executor="serial", progress=False)
    from mpsync.solvers import exact

    exact.clear_operator_cache()  # (forked workers would inherit this process's kept operator)
    grouped = sweep(base, grid, solver_options=opts, executor=executor, workers=2, progress=False,
                    group="W_over_feff", warm_start=True, cache_dir=tmp_path)
    np.testing.assert_allclose(grouped.ZQ.values, plain.ZQ.values, atol=1e-10)
    # along a group the exact solver keeps its operator: later points reuse it
    assert grouped.reused_operator.values[:, 0].sum() == 0 and grouped.reused_operator.values[:, 1:].all()
    # every point is cached separately: a rerun computes nothing
    again = sweep(base, grid, solver_options=opts, executor=executor, progress=False,
                  group="W_over_feff", warm_start=True, cache_dir=tmp_path)
    assert again.attrs["points_computed"] == 0 and again.attrs["points_cached"] == 6


def test_warm_start_skips_a_previous_result_of_another_size():
    """Along n a previous steady state is no start (another N): each point starts cold."""
    base = dict(model="chain", n=3, spacing=0.1, theta="magic", W=1.0)
    grouped = sweep(base, {"n": [3, 4, 5]}, executor="serial", progress=False, group="n", warm_start=True)
    plain = sweep(base, {"n": [3, 4, 5]}, executor="serial", progress=False)
    np.testing.assert_allclose(grouped.ZQ.values, plain.ZQ.values, atol=1e-10)


def test_group_options_are_checked():
    from mpsync.errors import MpsyncError

    base = dict(model="chain", n=3, spacing=0.1, theta="magic", W=1.0)
    with pytest.raises(MpsyncError, match="not a grid dimension"):
        sweep(base, {"W": [1.0, 2.0]}, group="spacing", progress=False)
    with pytest.raises(MpsyncError, match="needs group"):
        sweep(base, {"W": [1.0, 2.0]}, warm_start=True, progress=False)
    with pytest.raises(MpsyncError, match="x0 option"):
        sweep(base, {"W": [1.0, 2.0]}, method="meanfield", group="W", warm_start=True, progress=False)


def test_pump_relative_to_the_ensemble_optimum():
    from mpsync.solvers.permutational import optimal_pump

    base = dict(model="chain", n=6, spacing=0.1, theta="magic", W=1.0)
    s = build_system(base, W_over_Wopt=1.5)
    assert abs(s.W - 1.5 * optimal_pump(6, s.f_eff)[0]) < 1e-12
    with pytest.raises(InvalidSystemError, match="either"):
        build_system(base, W_over_Wopt=1.0, W_over_feff=0.5)


def test_cache_resume_recomputes_only_missing_point(tmp_path):
    CALLS.clear()
    grid = {"W": [0.5, 1.5, 3.0], "f_eff": [2.0, 3.0]}
    kw = dict(executor="serial", progress=False, cache_dir=tmp_path)
    ds1 = sweep(_fixed_n, grid, **kw)
    assert len(CALLS) == 6 and ds1.attrs["points_computed"] == 6
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 6
    victim = files[2]
    victim_params = json.loads(victim.read_text())["params"]
    victim.unlink()
    CALLS.clear()
    ds2 = sweep(_fixed_n, grid, **kw)
    assert len(CALLS) == 1, "only the deleted point is recomputed"
    assert (CALLS[0][1], CALLS[0][2]) == (victim_params["f_eff"], victim_params["W"])
    assert ds2.attrs["points_cached"] == 5 and ds2.attrs["points_computed"] == 1
    np.testing.assert_allclose(ds2.ZQ2.values, ds1.ZQ2.values, atol=1e-12)
    # a different observable set is a different cache key: everything recomputes
    CALLS.clear()
    sweep(_fixed_n, grid, observables=("ZQ",), **kw)
    assert len(CALLS) == 6


def _fixed_n(f_eff, W):
    return counted_ensemble(3, f_eff, W)


def test_failed_points_reported_and_not_cached(tmp_path):
    ds = sweep(dict(model="all_to_all", n=3, f_eff=2.0, W=1.0), {"W": [1.0, -1.0]},
               executor="serial", progress=False, cache_dir=tmp_path, on_error="nan")
    assert np.isfinite(ds.ZQ2.sel(W=1.0)) and np.isnan(ds.ZQ2.sel(W=-1.0))
    assert "W" in str(ds.error.sel(W=-1.0).values) and str(ds.error.sel(W=1.0).values) == ""
    assert ds.attrs["points_failed"] == 1 and len(list(tmp_path.glob("*.json"))) == 1
    with pytest.raises(InvalidSystemError):
        sweep(dict(model="all_to_all", n=3, f_eff=2.0, W=1.0), {"W": [-1.0]}, executor="serial",
              progress=False)
    with pytest.raises(InvalidSystemError, match="unknown model"):
        sweep(dict(model="ring", n=3), {"W": [1.0]}, executor="serial", progress=False)


@pytest.mark.parametrize("suffix", [".nc", ".h5"])
def test_file_round_trip(tmp_path, suffix):
    ds = sweep(dict(model="chain", n=3, spacing=0.1, theta="magic", W=1.0),
               {"W": [0.5, 2.0], "theta": ["magic", 1.0]}, executor="serial", progress=False,
               observables=("ZQ", "ZQ2", "sz", "correlations", "mutual_information", "cluster_ZQ"))
    path = save_dataset(ds, tmp_path / f"sweep{suffix}")
    back = load_dataset(path)
    assert back.identical(ds)
    assert back.correlations_re.dims == ("W", "theta", "site", "site2")


def test_package_level_sweep_is_callable():
    import mpsync
    import mpsync.sweeps  # noqa: F401 - the module does not shadow the function

    ds = mpsync.sweep(dict(model="all_to_all", n=2, f_eff=1.0, W=1.0), {"W": [2.0]}, executor="serial",
                      progress=False)
    assert ds.ZQ2.shape == (1,)


def test_local_processes_equal_serial():
    grid = {"W": [0.5, 1.0, 2.0, 4.0]}
    base = dict(model="chain", n=4, spacing=0.1, theta="magic", W=1.0)
    a = sweep(base, grid, executor="serial", progress=False)
    b = sweep(base, grid, executor="local", workers=2, progress=False)
    np.testing.assert_allclose(a.ZQ2.values, b.ZQ2.values, atol=1e-12)


def test_dask_local_cluster_equals_local_executor():
    distributed = pytest.importorskip("dask.distributed")
    grid = {"W": [0.5, 2.0, 4.0], "spacing": [0.1, 0.2]}
    base = dict(model="chain", n=4, spacing=0.1, theta="magic", W=1.0)
    local = sweep(base, grid, executor="serial", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = sweep(base, grid, executor=client, progress=False)
    for name in ("ZQ", "ZQ2", "sz_mean"):
        np.testing.assert_allclose(remote[name].values, local[name].values, atol=1e-12)
    assert remote.ZQ.dims == local.ZQ.dims


def test_spec_file(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent("""
        [system]
        model = "all_to_all"
        n = 3
        f_eff = 2.0
        W = 1.0

        [grid]
        W = {start = 0.5, stop = 2.5, num = 3}
        f_eff = [1.0, 2.0]

        [solver]
        method = "exact"
        solver = "direct"

        [run]
        observables = ["ZQ", "ZQ2", "sz_mean", "discord"]
        workers = 1
        group = "W"
        warm_start = true
    """))
    ds, out = run_spec_file(spec, progress=False)
    assert out == spec.with_suffix(".nc") and out.exists()
    assert ds.ZQ.dims == ("W", "f_eff") and list(ds.W.values) == [0.5, 1.5, 2.5]
    assert "discord" in ds and (tmp_path / ".mpsync-cache" / "spec").is_dir()
    ds2, _ = run_spec_file(spec, out=tmp_path / "again.nc", progress=False)
    assert ds2.attrs["points_cached"] == 6
    bad = tmp_path / "bad.toml"
    bad.write_text("[system]\nn = 3\n[grid]\nW = [1.0]\n")
    from mpsync.errors import MpsyncError

    with pytest.raises(MpsyncError, match="model"):
        run_spec_file(bad, progress=False)
