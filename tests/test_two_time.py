"""mpsync.two_time: one face for the two-time functions of every method that gives them.

Exact vs QuTiP's correlation_2op_1t (N = 5), the single-atom limit (analytic), the MPO vs
exact on a short delay range, permutational and cumulant through the face vs their former
functions, the spectrum's sum rule, save/load, and bad input (API and CLI). Seconds each,
the MPO test ~20 s.
"""

import json

import numpy as np
import pytest

import mpsync
from mpsync import DipoleSystem, TwoTimeResult
from mpsync import observables as obs
from mpsync.cli import main
from mpsync.errors import InvalidOptionError, InvalidSiteError, InvalidSystemError, NotApplicableError
from mpsync.solvers import cumulant, declared_options, permutational

qutip = pytest.importorskip("qutip")


def _op(single, a, n):
    ops = [qutip.qeye(2)] * n
    ops[a] = qutip.Qobj(single)
    return qutip.tensor(ops)


def _qutip_model(system):
    """H and jump operators of docs/physics.md#master-equation (independent of mpsync)."""
    from mpsync.channels import SM, SZ

    n = system.n
    sm = [_op(SM, a, n) for a in range(n)]
    H = 0 * _op(SZ, 0, n)
    for a in range(n):
        H += 0.5 * system.delta[a] * _op(SZ, a, n)
        for b in range(n):
            if a != b:
                H += 0.5 * system.g[a, b] * sm[a].dag() * sm[b]
    lam, vec = np.linalg.eigh(system.f)
    c_ops = [np.sqrt(lk) * sum(vec[b, k] * sm[b] for b in range(n)) for k, lk in enumerate(lam) if lk > 1e-13]
    c_ops += [np.sqrt(system.W) * sm[a].dag() for a in range(n)]
    return H, c_ops, sm


def test_exact_equals_qutip_correlation_2op_1t():
    n = 5
    s = DipoleSystem.chain(n, 0.15, 0.6, W=1.7, delta=np.linspace(-0.3, 0.4, n))
    taus = np.linspace(0.0, 3.0, 16)
    pairs = [(0, 2), (4, 2), (1, 1)]
    r = mpsync.two_time(s, taus, method="exact", pairs=pairs)
    H, c_ops, sm = _qutip_model(s)
    opts = {"atol": 1e-12, "rtol": 1e-10}
    for p, (a, b) in enumerate(pairs):
        ref = qutip.correlation_2op_1t(H, None, taus, c_ops, (sm[a] + sm[b]).dag(), sm[a] + sm[b], options=opts)
        np.testing.assert_allclose(r.Z[p], ref, atol=1e-8)
        ref_g = qutip.correlation_2op_1t(H, None, taus, c_ops, sm[a].dag(), sm[b], options=opts)
        np.testing.assert_allclose(r.G[p], ref_g, atol=1e-8)
    Jm = sum(sm)
    ref_j = qutip.correlation_2op_1t(H, None, taus, c_ops, Jm.dag(), Jm, options=opts)
    np.testing.assert_allclose(r.J, ref_j, atol=1e-8)
    # tau = 0: the equal-time correlations
    ss = mpsync.steady_state(s)
    np.testing.assert_allclose(r.G[:, 0], [ss.correlations[a, b] for a, b in pairs], atol=1e-12)
    assert r.errors == {} and r.method == "exact"


def test_single_atom_line_is_the_lorentzian():
    """One pumped, detuned atom: <s+(tau) s-> = p_up exp(i delta tau - (Gamma + W) tau / 2)."""
    W, delta = 1.5, 2.0
    s = DipoleSystem.from_matrices(np.ones((1, 1)), np.zeros((1, 1)), W=W, delta=[delta])
    taus = np.linspace(0.0, 40.0, 2001)
    r = mpsync.two_time(s, taus)
    p_up = W / (1.0 + W)
    ref = p_up * np.exp((1j * delta - 0.5 * (1.0 + W)) * taus)
    np.testing.assert_allclose(r.J, ref, atol=1e-9)
    gamma, err = r.linewidth
    assert abs(gamma - 0.5 * (1.0 + W)) < 1e-6 and err < 1e-6
    sp = r.spectrum()
    assert sp.window == "none"                       # decayed to e^-50
    assert abs(sp.omega[np.argmax(sp.S)] - delta) < 2 * (sp.omega[1] - sp.omega[0])
    # the sum rule: int S domega = <J+ J->, over one period 2 pi / dtau of the discrete transform
    nyquist = np.pi / (taus[1] - taus[0])
    period = np.linspace(-nyquist, nyquist, 4001)
    assert abs(np.trapezoid(r.spectrum(period).S, period) - p_up) < 1e-3 * p_up


def test_permutational_and_cumulant_through_the_face_match_their_former_functions():
    s = DipoleSystem.all_to_all(8, 4.0, 2.5)
    taus = np.linspace(0.0, 3.0, 31)
    rp = mpsync.two_time(s, taus, method="permutational", pairs=[(0, 1)])
    old = permutational.dicke_two_time(s, taus, kind="pair")
    np.testing.assert_allclose(rp.Z[0], old.values, atol=1e-12)
    np.testing.assert_allclose(rp.J, permutational.dicke_two_time(s, taus, kind="J").values, atol=1e-10)
    # the former call form still works for one release, with a DeprecationWarning, and its
    # arguments are not options of the new face
    with pytest.warns(DeprecationWarning, match="mpsync.two_time"):
        legacy = permutational.two_time(s, taus, kind="pair")
    np.testing.assert_allclose(legacy.values, old.values, atol=0)
    with pytest.warns(DeprecationWarning):
        legacy_j = permutational.two_time(permutational.steady_state(s), taus, "J", fit=False)
    assert legacy_j.kind == "J" and np.isnan(legacy_j.rate)
    assert not {"kind", "fit"} & set(declared_options("permutational", "two_time"))
    with pytest.raises(mpsync.InvalidOptionError):
        mpsync.two_time(s, taus, method="permutational", kind="J")
    # exact agrees with the permutational solver on the same ensemble
    re = mpsync.two_time(s, taus, method="exact", pairs=[(0, 1)])
    np.testing.assert_allclose(re.Z, rp.Z, atol=1e-9)
    np.testing.assert_allclose(re.J, rp.J, atol=1e-8)
    cs = cumulant.steady_state(s)
    rc = mpsync.two_time(cs, taus, pairs=4)
    tt, Z = cumulant.two_time_correlations(cs, 4, taus)
    others = [a for a in range(8) if a != 4]
    np.testing.assert_allclose(rc.Z, Z[others], atol=1e-12)
    assert rc.method == "cumulant" and rc.pairs.shape == (7, 2)
    # the cumulant J is sum_ab G_ab: at tau = 0 the equal-time correlations, later within the
    # closure's error (docs/solvers.md: 8-13 % in Z_ab at N = 3-5; measured 5.5 % of J(0) here)
    assert abs(rc.J[0] - cs.correlations.sum()) < 1e-10
    assert 0.01 * abs(rp.J[0]) < np.max(np.abs(rc.J - rp.J)) < 0.08 * abs(rp.J[0])


def test_mpo_matches_exact_on_a_short_delay_range():
    s = DipoleSystem.chain(5, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 1.0, 6)
    pairs = [(1, 2), (0, 4)]
    r = mpsync.two_time(s, taus, method="mpo", pairs=pairs, max_bond=16, dt=0.1)
    ref = mpsync.two_time(s, taus, method="exact", pairs=pairs)
    err = np.abs(r.Z - ref.Z)
    assert err.max() < 1e-3
    # the propagation uses the steady state's own MPO compression (its fixed point)
    assert r.diagnostics["mpo_cutoff"] == 1e-6
    assert np.max(np.abs(r.J - ref.J)) < 1e-3
    # the error bar (max_bond 16 from the steady state vs 8 from the lower rung's steady
    # state) is stated and covers the true error, at tau = 0 too (the steady state's error)
    assert r.errors["Z"].shape == r.Z.shape and np.all(err <= r.errors["Z"] + 1e-7)
    assert r.diagnostics["max_bond"] == 16 and r.diagnostics["low_bond"] == 8
    assert r.diagnostics["error_bar_includes_steady_state"] is True


def test_mpo_mirror_sources_and_one_site_steps_match_exact(tmp_path):
    """A mirror-symmetric chain runs one source of each mirror pair (5 is read off 0's run),
    and the propagation turns to one-site steps after a first two-site step; both against
    exact, and the mirrored result against the one that runs every source."""
    s = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 1.0, 6)
    pairs = [(0, 3), (5, 3)]
    ref = mpsync.two_time(s, taus, method="exact", pairs=pairs)
    steady = mpsync.steady_state(s, method="mpo", ladder=(8, 16))
    r = mpsync.two_time(steady, taus, method="mpo", pairs=pairs, dt=0.1)
    full = mpsync.two_time(steady, taus, method="mpo", pairs=pairs, dt=0.1, mirror=False, integrator="2site")
    assert r.diagnostics["mirror"] is True and full.diagnostics["mirror"] is False
    sources = [run["source"] for run in r.diagnostics["runs"]]
    assert sorted(set(sources)) == ["0", "3", "J"] and len(sources) == 6
    for run in r.diagnostics["runs"]:  # the first step two-site (it refills the lowered bonds)
        assert run["one_site_steps"] == run["steps"] - 1
    assert all(run["one_site_steps"] == 0 for run in full.diagnostics["runs"])
    asym = r.diagnostics["mirror_asymmetry"]
    assert 0 < asym < 1e-4
    for x in (r, full):
        err = np.abs(x.Z - ref.Z)
        assert err.max() < 2e-3 and np.all(err <= x.errors["Z"] + 1e-7)
        assert np.all(np.abs(x.J - ref.J) <= x.errors["J"] + 1e-7)
    # pair (5, 3) by the mirror equals the run of source 5 within the two bars
    assert np.all(np.abs(r.Z[1] - full.Z[1]) <= r.errors["Z"][1] + full.errors["Z"][1])
    # the lower bond dimension's curves: the bars are their envelope (plus the mirror's
    # asymmetry), they differ from Z, and they survive save/load
    assert r.Z_lower.shape == r.Z.shape and r.J_lower.shape == r.J.shape
    assert 0 < np.abs(r.Z - r.Z_lower).max() and np.all(np.abs(r.Z - r.Z_lower) <= r.errors["Z"] + 1e-12)
    assert np.all(np.abs(full.J - full.J_lower) <= full.errors["J"] + 1e-12)
    # <s+_a(tau) J-(0)> of every dipole from the J- run: against exact, and the spread of
    # their frequencies within the bar of the two bond dimensions plus the phase fits' bound
    assert r.J_sites.shape == (6, taus.size) and r.J_sites_lower.shape == (6, taus.size)
    np.testing.assert_allclose(r.J_sites.sum(axis=0), r.J, atol=1e-12)
    assert np.abs(r.J_sites - ref.J_sites).max() < 1e-3
    spread, bound = r.frequency_spread
    assert abs(spread - ref.frequency_spread[0]) <= r.errors["frequency_spread"] + bound
    assert 0 < r.errors["frequency_spread"] < 0.1 * spread
    r.save(tmp_path / "mpo.npz")
    back = TwoTimeResult.load(tmp_path / "mpo.npz")
    np.testing.assert_array_equal(back.Z_lower, r.Z_lower)
    np.testing.assert_array_equal(back.J_lower, r.J_lower)
    np.testing.assert_array_equal(back.J_sites_lower, r.J_sites_lower)
    assert ref.Z_lower is None and ref.J_lower is None and ref.J_sites_lower is None
    with pytest.raises(InvalidOptionError, match="integrator='1site'"):
        mpsync.two_time(steady, taus, method="mpo", pairs=pairs, integrator="1site")
    from mpsync.solvers.mpo.regression import propagate
    with pytest.raises(InvalidOptionError, match="integrator='1site'"):   # the low-level call too
        propagate(None, [], taus, 8, 0.1, 0.0, 1e-8, 10, integrator="1site")
    detuned = DipoleSystem.chain(6, 0.1, "magic", W=2.0, delta=[0.5, 0, 0, 0, 0, 0])
    with pytest.raises(InvalidOptionError, match="not mirror-symmetric"):
        mpsync.two_time(detuned, taus, method="mpo", pairs=pairs, mirror=True)


def test_mpo_sites_from_sources_that_cover_the_chain():
    """Pairs whose sites cover the chain need no J- run: <s+_a(tau) J-(0)> is the sum of the
    sources' traces (mirrored ones included), against exact."""
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 1.0, 6)
    pairs = [(0, 1), (2, 3)]
    r = mpsync.two_time(s, taus, method="mpo", pairs=pairs, max_bond=8, dt=0.1)
    ref = mpsync.two_time(s, taus, method="exact", pairs=pairs)
    assert "J" not in [run["source"] for run in r.diagnostics["runs"]]
    assert np.abs(r.J_sites - ref.J_sites).max() < 1e-3
    np.testing.assert_allclose(r.J_sites.sum(axis=0), r.J, atol=1e-12)
    # sources 2 and 3 are read off the runs of their images 1 and 0: the spread's error bar
    # holds the bond-dimension difference plus the mirror asymmetry's bound
    assert r.diagnostics["mirror"] and r.diagnostics["mirror_asymmetry"] > 0
    diff = abs(obs.frequency_spread(taus, r.J_sites)[0] - obs.frequency_spread(taus, r.J_sites_lower)[0])
    K = max(obs.phase_frequency_sensitivity(taus, x) for x in r.J_sites)
    assert r.errors["frequency_spread"] == pytest.approx(diff + 2 * r.diagnostics["mirror_asymmetry"] * K)
    plain = mpsync.two_time(s, taus, method="mpo", pairs=pairs, max_bond=8, dt=0.1, mirror=False)
    assert plain.errors["frequency_spread"] == pytest.approx(
        abs(obs.frequency_spread(taus, plain.J_sites)[0] - obs.frequency_spread(taus, plain.J_sites_lower)[0]))


def test_frequency_spread_of_the_chain_and_of_identical_dipoles():
    """Exact N = 6 chain: the dipoles' frequencies are mirror-symmetric, the ends turn
    slower than the middle (fewer neighbours to shift them), the spread is resolved; the
    all-to-all ensemble's dipoles are identical, so its spread is zero."""
    taus = np.linspace(0.0, 4.0, 41)
    chain = mpsync.two_time(DipoleSystem.chain(6, 0.1, "magic", W=2.0), taus, pairs=[])
    np.testing.assert_allclose(chain.J_sites.sum(axis=0), chain.J, atol=1e-12)
    spread, bound, nu, nu_err = obs.frequency_spread(taus, chain.J_sites)
    np.testing.assert_allclose(nu, nu[::-1], atol=1e-8)
    assert nu[0] < nu[1] < nu[2] and spread == pytest.approx(chain.frequency_spread[0])
    assert 10 * bound < spread < 0.1
    ens = mpsync.two_time(DipoleSystem.all_to_all(6, 3.0, W=2.0), taus, method="permutational", pairs=[])
    assert ens.J_sites.shape == (6, taus.size) and ens.frequency_spread[0] == pytest.approx(0.0, abs=1e-12)


def test_phase_frequency_recovers_the_rotation_and_its_noise():
    """The slope of the unwrapped phase: exact for exp((i nu - gamma) tau) whatever nu/gamma
    (where a real-part cosine fit is ill-conditioned), its standard error calibrated on
    noisy curves (seeded)."""
    t = np.linspace(0.0, 4.0, 41)
    for nu in (-2.0, 0.05, 0.3, 7.0):
        got, err = obs.phase_frequency(t, 0.8 * np.exp((1j * nu - 1.5) * t))
        assert got == pytest.approx(nu, abs=1e-10) and err < 1e-10
    rng = np.random.default_rng(7)
    fits = np.array([obs.phase_frequency(t, np.exp((0.5j - 1.0) * t)
                                         + 3e-3 * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size)))
                     for _ in range(300)])
    assert 0.8 < np.std(fits[:, 0]) / np.mean(fits[:, 1]) < 1.25
    assert np.isnan(obs.phase_frequency(t, np.zeros(t.size))[0])


def test_mpo_error_bar_envelope_covers_a_crossing():
    """Where the two bond dimensions' curves cross, the bar takes the largest difference
    within +-0.5/Gamma, not the pointwise zero."""
    from mpsync.solvers.mpo.regression import envelope

    taus = np.linspace(0.0, 2.0, 21)
    diff = np.abs(np.cos(3.0 * taus))  # crosses zero at tau = pi / 6
    env = envelope(taus, diff)
    assert np.all(env >= diff) and env[5] == pytest.approx(1.0)  # tau = 0.5 sees tau = 0
    assert env[10] == pytest.approx(max(diff[5:16]))
    assert np.array_equal(envelope(taus, diff, half_width=0.0), diff)


def test_mpo_matches_permutational_for_an_all_to_all_ensemble():
    """MPO regression on identical all-to-all dipoles against the permutational solver (an
    independent method: Dicke-space propagation), a pair and J, the bar covering the error."""
    s = DipoleSystem.all_to_all(6, f_eff=3.0, W=6.0)
    taus = np.linspace(0.0, 1.0, 6)
    r = mpsync.two_time(s, taus, method="mpo", pairs=[(0, 1)], max_bond=16, dt=0.1)
    ref = mpsync.two_time(s, taus, method="permutational", pairs=[(0, 1)])
    err = np.abs(r.Z - ref.Z)
    assert err.max() < 1e-3 and np.all(err <= r.errors["Z"] + 1e-7)
    jerr = np.abs(r.J - ref.J)
    assert jerr.max() < 1e-3 * abs(ref.J[0]) and np.all(jerr <= r.errors["J"] + 1e-7)


def test_mpo_error_bar_without_a_lower_rung_says_so():
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    with pytest.warns(mpsync.NoErrorBarWarning, match="a single rung"):
        steady = mpsync.steady_state(s, method="mpo", max_bond=8)
    assert "previous_mps" not in steady.extras
    with pytest.warns(mpsync.NoErrorBarWarning, match="propagation's error only"):
        r = mpsync.two_time(steady, [0.0, 0.5], method="mpo", pairs=[(1, 2)], dt=0.1)
    assert r.diagnostics["error_bar_includes_steady_state"] is False


def test_a_loaded_or_foreign_steady_state_is_refused_with_one_line(tmp_path):
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    steady = mpsync.steady_state(s)
    steady.save(tmp_path / "ss.npz")
    loaded = mpsync.SteadyState.load(tmp_path / "ss.npz")
    with pytest.raises(NotApplicableError, match="has no 'basis'.*loaded from a file"):
        mpsync.two_time(loaded, [0.0, 0.5])
    with pytest.raises(NotApplicableError, match="belongs to another system"):
        from mpsync.solvers import exact
        exact.two_time(s.replace(W=5.0), [0.0, 0.5], steady=steady)


def test_save_load_round_trip(tmp_path):
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    r = mpsync.two_time(s, np.linspace(0, 2, 21), pairs=[(0, 1), (2, 3)])
    path = tmp_path / "tt.npz"
    r.save(path)
    back = TwoTimeResult.load(path)
    for name in ("taus", "pairs", "G", "G_reverse", "Z", "J", "J_sites"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
    assert back.method == "exact" and back.system.n == 4
    np.testing.assert_allclose(back.system.g, s.g)
    np.testing.assert_allclose(back.fits["nu"], r.fits["nu"])
    assert json.loads(json.dumps(back.to_dict()))["N"] == 4
    with pytest.raises(mpsync.MpsyncError, match="not an mpsync two-time file"):
        mpsync.steady_state(s).save(tmp_path / "ss.npz")
        TwoTimeResult.load(tmp_path / "ss.npz")


@pytest.mark.parametrize("pairs, match", [
    ([(0, 9)], "out of range"), ([(0,)], "two site indices"), ("all", "must be None"),
    ([(0.5, 1)], "not an integer"),
])
def test_bad_pairs_one_clear_error(pairs, match):
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    with pytest.raises(InvalidSiteError, match=match):
        mpsync.two_time(s, [0.0, 1.0], pairs=pairs)


@pytest.mark.parametrize("taus", [[1.0, 0.5], [], [-1.0, 0.0], [0.0, np.nan], [0.0, 0.0, 1.0]])
def test_bad_taus_one_clear_error(taus):
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    with pytest.raises(InvalidSystemError, match="taus must be"):
        mpsync.two_time(s, taus)


def test_methods_without_two_time_and_mismatched_steady_states_are_refused():
    s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    with pytest.raises(NotApplicableError, match="'exact', 'permutational', 'cumulant', 'mpo'"):
        mpsync.two_time(s, [0.0, 1.0], method="meanfield")
    with pytest.raises(NotApplicableError, match="computed with method='exact'"):
        mpsync.two_time(mpsync.steady_state(s), [0.0, 1.0], method="cumulant")
    with pytest.raises(InvalidOptionError, match="unknown option 'max_bnd'"):
        mpsync.two_time(s, [0.0, 1.0], method="mpo", max_bnd=8)
    with pytest.raises(InvalidOptionError, match="symmetry must be 'auto', 'U1' or 'none'"):
        mpsync.two_time(s, [0.0, 1.0], method="mpo", symmetry="Z2")
    with pytest.raises(NotApplicableError, match="permutation-symmetric"):
        mpsync.two_time(s, [0.0, 1.0], method="permutational")


def test_cli_two_time(capsys, tmp_path):
    base = ["two-time", "--model", "chain", "--n", "4", "--spacing", "0.1", "--W", "2", "--tau-max", "2",
            "--steps", "20"]
    assert main(base + ["--pairs", "0-1,2-3", "--json", "--save", str(tmp_path / "t.npz")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pairs"] == [[0, 1], [2, 3]] and len(data["taus"]) == 21 and "linewidth" in data
    assert TwoTimeResult.load(tmp_path / "t.npz").Z.shape == (2, 21)
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "linewidth gamma" in out and "Z_ab(0)" in out
    for bad in (["--pairs", "0-7"], ["--pairs", "x"], ["--method", "meanfield"], ["--max-bond", "4"]):
        assert main(base + bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("mpsync: error: ") and len(err.strip().splitlines()) == 1
