"""Observables on known states, and moments -> pair density matrix against dense states."""

import numpy as np
import pytest

from mpsync import DipoleSystem, Moments, SteadyState
from mpsync.channels import SM, SP, SZ, ID2
from mpsync.observables import (ZQ2_from_correlations, cluster_ZQ2, mutual_information, von_neumann_entropy,
                                pair_density_matrix, qfi, quantum_discord,
                                entanglement_witness_bounds)


def _random_rho(rng, dim):
    a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    rho = a @ a.conj().T
    return rho / np.trace(rho)


def _op(single, site, n):
    mats = [ID2] * n
    mats[site] = single
    out = np.array([[1.0]])
    for m in mats:
        out = np.kron(out, m)
    return out


def test_pair_density_matrix_from_moments_equals_partial_trace(rng):
    rho = _random_rho(rng, 4)  # two sites, site 0 most significant
    ev = lambda op: np.trace(rho @ op)  # noqa: E731
    sz = [ev(_op(SZ, a, 2)).real for a in range(2)]
    sm = [ev(_op(SM, a, 2)) for a in range(2)]
    kw = dict(
        sz_a=sz[0], sz_b=sz[1], c_ab=ev(_op(SP, 0, 2) @ _op(SM, 1, 2)),
        zz_ab=ev(_op(SZ, 0, 2) @ _op(SZ, 1, 2)).real, sm_a=sm[0], sm_b=sm[1],
        zsm_ab=ev(_op(SZ, 0, 2) @ _op(SM, 1, 2)), zsm_ba=ev(_op(SZ, 1, 2) @ _op(SM, 0, 2)),
        smsm_ab=ev(_op(SM, 0, 2) @ _op(SM, 1, 2)),
    )
    np.testing.assert_allclose(pair_density_matrix(**kw), rho, atol=1e-13)


def test_product_state_has_no_correlations(rng):
    r1, r2 = _random_rho(rng, 2), _random_rho(rng, 2)
    rho = np.kron(r1, r2)
    assert mutual_information(rho) == pytest.approx(0.0, abs=1e-10)
    assert quantum_discord(rho) == pytest.approx(0.0, abs=1e-8)


def test_bell_state():
    bell = np.zeros(4)
    bell[[1, 2]] = 2 ** -0.5
    rho = np.outer(bell, bell)
    assert mutual_information(rho) == pytest.approx(2.0, abs=1e-12)
    assert quantum_discord(rho) == pytest.approx(1.0, abs=1e-8)


def test_classically_correlated_state_has_zero_discord():
    rho = np.diag([0.5, 0.0, 0.0, 0.5])
    assert mutual_information(rho) == pytest.approx(1.0, abs=1e-12)
    assert quantum_discord(rho) == pytest.approx(0.0, abs=1e-8)


def test_werner_state_discord_closed_form():
    # Werner state p|psi-><psi-| + (1-p) 1/4: discord known in closed form (Ollivier-Zurek).
    p = 0.6
    psi = np.array([0, 1, -1, 0]) / np.sqrt(2)
    rho = p * np.outer(psi, psi) + (1 - p) * np.eye(4) / 4
    expected = ((1 - p) / 4 * np.log2(1 - p) - (1 + p) / 2 * np.log2(1 + p)
                + (1 + 3 * p) / 4 * np.log2(1 + 3 * p))
    assert quantum_discord(rho) == pytest.approx(expected, abs=1e-7)


def test_qfi_closed_forms():
    n = 4
    ghz = np.zeros(2 ** n)
    ghz[[0, -1]] = 2 ** -0.5
    assert qfi(ghz) == pytest.approx((n * n + 2 * n) / 3, abs=1e-10)
    plus = np.ones(2) / np.sqrt(2)
    css = plus
    for _ in range(n - 1):
        css = np.kron(css, plus)
    assert qfi(css) == pytest.approx(2 * n / 3, abs=1e-10)
    assert qfi(np.outer(css, css)) == pytest.approx(2 * n / 3, abs=1e-8)
    # maximally mixed state: no sensitivity
    assert qfi(np.eye(2 ** n) / 2 ** n) == pytest.approx(0.0, abs=1e-12)
    low, high = entanglement_witness_bounds(n)
    assert low == pytest.approx(8 / 3) and high == pytest.approx(8.0)


def test_zq2_and_cluster_zq2():
    n = 5
    c = np.full((n, n), 0.1 + 0.05j)
    np.fill_diagonal(c, 0.7)
    assert ZQ2_from_correlations(c) == pytest.approx(0.1)
    # Nearest-neighbour-only correlations: windows of 2 see them fully.
    c = np.zeros((n, n))
    for a in range(n - 1):
        c[a, a + 1] = c[a + 1, a] = 0.2
    assert cluster_ZQ2(c, 2) == pytest.approx(0.2)
    assert cluster_ZQ2(c, 3) == pytest.approx(4 * 0.2 / 6)
    # two rows of a lattice: windows never cross rows
    lat = np.zeros((6, 6))
    lat[2, 3] = lat[3, 2] = 1.0  # crosses from row 0 to row 1
    assert cluster_ZQ2(lat, 2, lattice_shape=(2, 3)) == 0.0


def test_steady_state_result_uses_moments():
    n = 3
    sz = np.array([0.2, -0.1, 0.3])
    c = np.full((n, n), 0.05 + 0j)
    np.fill_diagonal(c, (1 + sz) / 2)
    zz = np.outer(sz, sz)
    np.fill_diagonal(zz, 1.0)
    sys_ = DipoleSystem.chain(n, 0.2, "magic", W=1.0)
    res = SteadyState(sys_, Moments(sz, c, zz), "test", {"seconds": 0.0})
    assert res.ZQ2 == pytest.approx(0.05) and res.ZQ == pytest.approx(np.sqrt(0.05))
    rho = res.pair_density_matrix(0, 1)
    assert np.trace(rho).real == pytest.approx(1.0)
    np.testing.assert_allclose(rho, rho.conj().T)
    d = res.to_dict()
    assert d["method"] == "test" and d["N"] == 3 and len(d["sz"]) == 3


def test_product_state_moments_equal_dense_expectations(rng):
    from mpsync.states import product_state

    sites = [_random_rho(rng, 2) for _ in range(3)]
    rho = np.kron(np.kron(sites[0], sites[1]), sites[2])
    ev = lambda op: np.trace(rho @ op)  # noqa: E731
    sz = np.array([ev(_op(SZ, a, 3)).real for a in range(3)])
    sm = np.array([ev(_op(SM, a, 3)) for a in range(3)])
    m = Moments.of_product_state(sz, sm)
    for a in range(3):
        for b in range(3):
            if a != b:
                assert abs(m.correlations[a, b] - ev(_op(SP, a, 3) @ _op(SM, b, 3))) < 1e-13
                assert abs(m.zsm[a, b] - ev(_op(SZ, a, 3) @ _op(SM, b, 3))) < 1e-13
                assert abs(m.smsm[a, b] - ev(_op(SM, a, 3) @ _op(SM, b, 3))) < 1e-13
                assert abs(m.zz[a, b] - ev(_op(SZ, a, 3) @ _op(SZ, b, 3)).real) < 1e-13
    assert np.allclose(np.diag(m.correlations), (1 + sz) / 2)
    assert product_state("x", 2)[0][1, 0] == 0.5


# ---------------------------------------------------------------------- unphysical states (issue 14)
def _not_a_state():
    """Trace one, Hermitian, smallest eigenvalue -0.1."""
    w = np.array([-0.1, 0.2, 0.4, 0.5])
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    return q @ np.diag(w) @ q.T


@pytest.mark.parametrize("fn", [mutual_information, quantum_discord,
                                lambda r: qfi(r, 2), lambda r: von_neumann_entropy(r)])
def test_observables_refuse_a_matrix_that_is_not_a_state(fn):
    from mpsync.errors import UnphysicalStateError

    with pytest.raises(UnphysicalStateError, match="smallest eigenvalue -0.1"):
        fn(_not_a_state())


@pytest.mark.parametrize("fn", [mutual_information, quantum_discord, qfi, von_neumann_entropy])
def test_observables_nan_with_warning_on_request(fn):
    from mpsync.errors import UnphysicalStateWarning

    with pytest.warns(UnphysicalStateWarning, match="not a density matrix"):
        assert np.isnan(fn(_not_a_state(), on_unphysical="nan"))


def test_round_off_below_the_tolerance_is_accepted(rng):
    """Eigenvalues in [-STATE_TOL, 0) are round-off: clipped, no error (pure states, rank 1)."""
    from mpsync.observables import STATE_TOL

    bell = np.zeros(4)
    bell[[0, 3]] = 2 ** -0.5
    rho = np.outer(bell, bell)
    rho = rho - 0.5 * STATE_TOL * np.diag([0, 1, 1, 0]) + 0.5 * STATE_TOL * np.diag([1, 0, 0, 1])
    assert np.linalg.eigvalsh(rho)[0] < 0
    assert abs(mutual_information(rho) - 2.0) < 1e-6
    assert abs(quantum_discord(rho) - 1.0) < 1e-6


def test_result_policy_exact_raises_approximate_nan():
    """SteadyState.mutual_information / discord: exact methods raise, approximate ones give
    NaN with a warning, on the same unphysical moments (C_01 = 0.5 with sz = 0: not a state)."""
    from mpsync.errors import UnphysicalStateError, UnphysicalStateWarning
    from mpsync.observables import EXACT_METHODS, unphysical_policy

    s = DipoleSystem.all_to_all(2, 1.0, 1.0)
    C = np.array([[0.5, 0.5], [0.5, 0.5]], dtype=complex)
    zz = np.array([[1.0, -0.9], [-0.9, 1.0]])   # with C_01 = 1/2 needs zz = -1 (singlet/triplet)
    m = Moments(np.zeros(2), C, zz)
    assert set(EXACT_METHODS) == {"exact", "permutational"}
    for method in ("exact", "permutational"):
        assert unphysical_policy(method) == "raise"
        with pytest.raises(UnphysicalStateError):
            SteadyState(s, m, method).mutual_information()
        with pytest.raises(UnphysicalStateError):
            SteadyState(s, m, method).discord()
    for method in ("cumulant", "meanfield", "trajectories", "mpo"):
        with pytest.warns(UnphysicalStateWarning):
            assert np.isnan(SteadyState(s, m, method).mutual_information())


def test_exact_steady_states_pass_the_state_check():
    """Round-off of the exact solvers stays far below STATE_TOL (pair and dense rho)."""
    import mpsync
    from mpsync.solvers import exact

    s = DipoleSystem.all_to_all(4, 4.0, 2.0)
    for method in ("exact", "permutational"):
        ss = mpsync.steady_state(s, method=method)
        assert np.linalg.eigvalsh(ss.pair_density_matrix(0, 1))[0] > -1e-12
        assert ss.mutual_information() > 0 and ss.discord() >= 0
    rho = exact.density_matrix(DipoleSystem.chain(4, 0.1, "magic", W=2.0))
    assert np.linalg.eigvalsh(rho)[0] > -1e-12
    assert qfi(rho) > 0


def test_phase_frequency_sensitivity_bounds_a_bounded_change():
    """|delta nu| <= K epsilon for any change of modulus <= epsilon, and the bound is reached
    (to first order) by the phase error that has the sign of tau - tau_m."""
    from mpsync.observables import phase_frequency, phase_frequency_sensitivity

    t = np.linspace(0.0, 4.0, 41)
    g = 0.8 * np.exp((0.3j - 0.9) * t)
    K = phase_frequency_sensitivity(t, g)
    nu0 = phase_frequency(t, g)[0]
    eps = 1e-6
    rng = np.random.default_rng(3)
    for _ in range(20):
        d = eps * rng.uniform(0, 1, t.size) * np.exp(2j * np.pi * rng.uniform(size=t.size))
        assert abs(phase_frequency(t, g + d)[0] - nu0) <= K * eps * (1 + 1e-3)
    w = np.abs(g) ** 2
    tm = np.sum(w * t) / np.sum(w)
    worst = g * (1 + 1j * eps * np.sign(t - tm) / np.abs(g))
    assert abs(phase_frequency(t, worst)[0] - nu0) == pytest.approx(K * eps, rel=1e-3)
