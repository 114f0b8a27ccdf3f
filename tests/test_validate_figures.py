"""Tests of the figure registry, the cross-solver agreement table and the demo."""

from pathlib import Path

import numpy as np
import pytest

from mpsync.paper import demo, validate
from mpsync.errors import MpsyncError
from mpsync.paper.figures import FIGURES, run_figure

PAPER = ["2a", "2b", "2c", "2d", "2e", "3a", "3b", "4", "S1", "S2", "S3"]
BEYOND = ["length", "linewidth", "4mpo", "S1mpo"]       # studies beyond the paper


def test_registry_names_and_wrappers():
    assert list(FIGURES) == PAPER + BEYOND
    root = Path(__file__).resolve().parents[1] / "validation"
    for name in PAPER + BEYOND:
        script = root / f"fig{name}.py"
        assert script.exists() and f'main("{name}")' in script.read_text()
    with pytest.raises(MpsyncError, match="unknown figure"):
        run_figure("9z", quick=True)


def test_cached_points_are_shared_between_runs(tmp_path, monkeypatch):
    """Two runs on one out_dir split the points: a point claimed by a live run is waited
    for (its row read, not recomputed), a dead run's claim is taken over."""
    import json
    import os
    import subprocess
    import sys
    import threading

    from mpsync.paper import figures

    monkeypatch.setattr(figures, "_POLL_SECONDS", 0.05)
    cache = tmp_path / "cache" / "t"
    cache.mkdir(parents=True)
    (cache / "N1.running").write_text(str(os.getpid()))          # a live run holds N = 1
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (cache / "N2.running").write_text(str(dead.pid))             # a killed run held N = 2

    def other_run_finishes():
        (cache / "N1.json").write_text(json.dumps([1.0, 10.0]))
        (cache / "N1.running").unlink()

    timer = threading.Timer(0.3, other_run_finishes)
    timer.start()
    computed = []
    rows = figures._rows_by_length([1, 2, 3], tmp_path, "t", lambda n: computed.append(n) or (n, n * 2))
    timer.join()
    assert computed == [2, 3] and rows == [(1.0, 10.0), (2.0, 4.0), (3.0, 6.0)]
    assert not list(cache.glob("*.running")) and not list(cache.glob("*.tmp"))
    assert run_figure.__module__ == figures.__name__
    with pytest.raises(MpsyncError, match="unknown figure"):
        run_figure("s1mpox", quick=True)


def _all_checks_pass(info):
    failed = [c for c in info["checks"] if not c[1]]
    assert not failed, failed
    for p in info["paths"]:
        assert Path(p).exists(), p


@pytest.mark.parametrize("name", ["2a", "2e", "S2", "S3"])
def test_cheap_figures_quick(tmp_path, name):
    # 2a: mean-field ODE sweep vs supplement Eq. 5 and the threshold/optimum statements;
    # 2e: discord/mutual information ordering and peak; S2: both readings (fixed f_eff:
    # finite large-N limit; fixed f_ab: increase and saturate), cumulant vs exact;
    # S3: magic-angle chain (exact) vs the all-to-all ensemble (permutational), same f_eff.
    import warnings

    from mpsync.errors import NotLindbladWarning, UnphysicalStateWarning

    with warnings.catch_warnings():
        # every figure stays in the physical regime (f PSD, pair matrices are states)
        warnings.simplefilter("error", NotLindbladWarning)
        warnings.simplefilter("error", UnphysicalStateWarning)
        info = run_figure(name, quick=True, out_dir=tmp_path, progress=False)
    assert info["checks"], "every figure checks something"
    _all_checks_pass(info)
    assert any(p.endswith(".png") for p in info["paths"])


def test_figure_data_come_from_the_sweep_cache(tmp_path):
    run_figure("2e", quick=True, out_dir=tmp_path, progress=False)
    from mpsync.sweeps import load_dataset

    ds = load_dataset(tmp_path / "fig2e.nc")
    assert ds.attrs["points_computed"] == ds.W.size
    run_figure("2e", quick=True, out_dir=tmp_path, progress=False)
    ds = load_dataset(tmp_path / "fig2e.nc")
    assert ds.attrs["points_cached"] == ds.W.size and ds.attrs["points_computed"] == 0


def _small_pairs(tol_cumulant=0.05):
    from mpsync.model import DipoleSystem

    case = [("all-to-all N=4", lambda: DipoleSystem.all_to_all(4, 4.0, 2.0))]
    return [validate.Pair("exact", "permutational", case, tol=1e-8),
            validate.Pair("exact", "cumulant", [("all-to-all N=5 W=3", lambda: DipoleSystem.all_to_all(5, 5.0, 3.0))],
                          tol=tol_cumulant),
            validate.Pair("meanfield", "meanfield-analytic",
                          [("all-to-all N=10", lambda: DipoleSystem.all_to_all(10, 8.0, 4.0))], tol=1e-5)]


def test_validation_table_passes_and_fails(tmp_path):
    out = tmp_path / "agreement.md"
    assert validate.run_validation(quick=True, out=out, progress=False, pairs=_small_pairs())
    text = out.read_text()
    assert text.count("| pass |") == 3 and "0 failed" in text
    # an impossible tolerance must fail the run (the approximate cumulant is not exact)
    assert not validate.run_validation(quick=True, out=out, progress=False, pairs=_small_pairs(1e-12))
    assert "| FAIL |" in out.read_text()


def test_stochastic_comparison_in_standard_errors():
    # A fake stochastic result 1e-3 away with standard error 1e-3 is 1 sigma off.
    from mpsync.model import DipoleSystem
    from mpsync.result import Moments, SteadyState

    s = DipoleSystem.all_to_all(3, 2.0, 1.0)
    m = Moments(np.zeros(3), 0.1 * np.ones((3, 3)), np.ones((3, 3)))
    det = SteadyState(s, m, "x")
    m2 = Moments(np.full(3, 1e-3), 0.1 * np.ones((3, 3)), np.ones((3, 3)))
    sto = SteadyState(s, m2, "y", errors={"sz": np.full(3, 1e-3), "correlations": np.full((3, 3), 1e-3),
                                          "ZQ2": 1e-3})
    r = validate._stochastic_ratio(det, sto, floor=0.0)
    assert abs(r["sz"] - 1.0) < 1e-12 and r["C"] == 0.0


def test_demo_quick(tmp_path):
    info = demo.run(out_dir=tmp_path, quick=True, progress=False)
    assert Path(info["png"]).exists() and Path(info["csv"]).exists()
    assert all(ok for _, ok, _ in info["checks"])
    # the all-to-all ensemble with the chain's f_eff: the two Z_Q curves are close (Fig. S3)
    za, zc = info["ZQ_all_to_all"], info["ZQ_chain"]
    assert np.max(np.abs(za - zc)) < 0.05 and np.max(za) > 0.2


#: Statements of the paper that these quick runs do not reproduce (see validation/README.md):
#: (none left: Fig. 2(c) at N = 6 passes on homodyne, the paper's unravelling)
KNOWN_DISAGREEMENTS = {}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["2b", "2c", "2d", "3a", "3b", "4", "S1"])
def test_other_figures_quick(tmp_path, name):
    info = run_figure(name, quick=True, out_dir=tmp_path, progress=False)
    known = KNOWN_DISAGREEMENTS.get(name, ())
    failed = [c for c in info["checks"] if not c[1] and not any(k in c[0] for k in known)]
    assert not failed, failed
    assert any(c[1] for c in info["checks"]), "at least one statement is reproduced"
    assert all(Path(p).exists() for p in info["paths"])


@pytest.mark.slow
def test_validate_quick_all_pairs(tmp_path):
    assert validate.run_validation(quick=True, out=tmp_path / "agreement.md", progress=False)


def test_every_validation_case_is_a_lindblad_equation():
    """No agreement case uses an f that is not positive semidefinite (issue 14): the
    cumulant and mean field would warn, and the quantum solvers refuse such f."""
    for pair in validate.pairs():
        for label, factory in pair.cases:
            s = factory()
            s.check_lindblad(f"{pair.a} / {pair.b}: {label}")


def test_lattice_finite_size_script_small(tmp_path):
    """validation/lattice_finite_size.py (the Fig. 3(a) finite-size study) at toy sizes:
    resumes from its JSON, picks the best W per (L, alpha), reports cluster lengths."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "validation" / "lattice_finite_size.py"
    spec = importlib.util.spec_from_file_location("lattice_fs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "fs.json"
    rows = mod.run([4, 6], [0.5], [0.4, 0.6], out)
    assert len(rows) == 4 and len(mod.run([4, 6], [0.5], [0.4, 0.6], out)) == 4  # resumed, not redone
    best, table = mod.summary(rows)
    assert set(best) == {(4, 0.5), (6, 0.5)} and "| 0.5 | 6 |" in table
    assert mod.cluster_length([0.2, 0.15, 0.1]) == 3 and mod.cluster_length([0.1]) == 0
    for r in rows:
        assert len(r["profile"]) == r["L"] - 1 and r["residual"] < 1e-6


@pytest.mark.slow
def test_linewidth_study_quick(tmp_path):
    """N = 6, 8: converged chains, linewidth error bars below 10 %, J(0) = sum C_ab (~2-4 min)."""
    info = run_figure("linewidth", quick=True, out_dir=tmp_path, progress=False)
    _all_checks_pass(info)


@pytest.mark.slow
def test_fig4_mpo_row_quick(tmp_path):
    """N = 6, a = 0.05: every MPO point has an error bar that covers its distance to the
    exact solver on the same grid, and the maximum over theta is at theta_m (~3 min)."""
    info = run_figure("4mpo", quick=True, out_dir=tmp_path, progress=False)
    checks = {c[0]: c for c in info["checks"]}
    covered = [c for d, c in checks.items() if d.startswith("MPO vs exact")]
    assert covered and covered[0][1], covered
    failed = [c for c in info["checks"] if not c[1]]
    assert not failed, failed


@pytest.mark.slow
def test_s1_chain_quick(tmp_path):
    """N = 6 chain: Gamma/gamma of the central pair by the MPO within its error bar of the
    exact solver at every W, converged steady states, bars below 10 % (~3-5 min)."""
    info = run_figure("s1MPO", quick=True, out_dir=tmp_path, progress=False)   # names are case-blind
    _all_checks_pass(info)


@pytest.mark.slow
def test_chain_length_study_quick(tmp_path):
    """N = 6, 8, 10: every MPO point converged, the chain below all-to-all (about 1-4 min)."""
    info = run_figure("length", quick=True, out_dir=tmp_path, progress=False)
    _all_checks_pass(info)
