"""DipoleSystem construction, validation and the coupling limits of docs/physics.md#couplings."""

import numpy as np
import pytest

from mpsync import DipoleSystem, InvalidSystemError, MAGIC_ANGLE
from mpsync.couplings import dipolar_pair


def test_f_tends_to_gamma_at_short_distance():
    for cos in (0.0, 0.3, 1.0):
        f, _ = dipolar_pair(np.array([1e-4]), np.array([cos]))
        assert f[0] == pytest.approx(1.0, abs=1e-6)


def test_magic_angle_removes_near_field():
    r = np.linspace(0.05, 3.0, 37)
    f, g = dipolar_pair(r, np.full_like(r, np.cos(MAGIC_ANGLE)))
    z = 2 * np.pi * r
    np.testing.assert_allclose(f, np.sin(z) / z, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, -np.cos(z) / z, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("spacing", [0.5, 1.0])
def test_magic_angle_half_and_full_wavelength_decouple_f(spacing):
    s = DipoleSystem.chain(5, spacing, "magic", W=1.0)
    off = ~np.eye(5, dtype=bool)
    assert np.max(np.abs(s.f[off])) < 1e-14
    assert np.max(np.abs(s.g[off])) > 1e-3  # exchange survives


def test_theta_zero_matches_closed_form():
    # Dipoles along the chain: sin^2 = 0, 3cos^2 - 1 = 2.
    s = DipoleSystem.chain(2, 0.2, 0.0, W=1.0)
    z = 2 * np.pi * 0.2
    f_expected = 1.5 * 2 * (np.sin(z) / z**3 - np.cos(z) / z**2)
    g_expected = -1.5 * 2 * (np.cos(z) / z**3 + np.sin(z) / z**2)
    assert s.f[0, 1] == pytest.approx(f_expected, rel=1e-13)
    assert s.g[0, 1] == pytest.approx(g_expected, rel=1e-13)


def test_from_positions_matches_chain():
    pos = np.c_[0.1 * np.arange(4), np.zeros(4), np.zeros(4)]
    dip = [np.cos(0.4), np.sin(0.4), 0.0]
    a = DipoleSystem.from_positions(pos, dip, W=2.0)
    b = DipoleSystem.chain(4, 0.1, 0.4, W=2.0)
    np.testing.assert_allclose(a.f, b.f, atol=1e-14)
    np.testing.assert_allclose(a.g, b.g, atol=1e-14)


def test_effective_couplings_all_to_all():
    s = DipoleSystem.all_to_all(10, f_eff=3.0, W=1.0, g_eff=0.5)
    assert s.f_eff == pytest.approx(3.0)
    assert s.g_eff == pytest.approx(0.5)
    assert s.is_permutation_symmetric
    assert not DipoleSystem.chain(4, 0.1, "magic", 1.0).is_permutation_symmetric


def test_power_law_lattice():
    s = DipoleSystem.power_law((3, 4), alpha=1.5, W=1.0)
    assert s.n == 12 and s.lattice_shape == (3, 4)
    # sites 0 and 5 are (0,0) and (1,1): distance sqrt 2
    assert s.f[0, 5] == pytest.approx(0.25 * 2 ** -0.75)
    assert np.all(s.g == 0)


def test_immutable_and_replace():
    s = DipoleSystem.chain(3, 0.1, "magic", W=1.0)
    with pytest.raises(ValueError):
        s.f[0, 1] = 3.0
    t = s.replace(W=4.0)
    assert t.W == 4.0 and s.W == 1.0
    np.testing.assert_array_equal(t.f, s.f)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(f=np.eye(3), g=np.zeros((2, 2)), W=1.0), "shape"),
        (dict(f=np.ones((2, 3)), g=np.zeros((2, 3)), W=1.0), "square"),
        (dict(f=np.array([[1, 0.2], [0.3, 1]]), g=np.zeros((2, 2)), W=1.0), "symmetric"),
        (dict(f=np.array([[1, np.nan], [np.nan, 1]]), g=np.zeros((2, 2)), W=1.0), "non-finite"),
        (dict(f=np.eye(2), g=np.array([[0, np.inf], [np.inf, 0]]), W=1.0), "non-finite"),
        (dict(f=np.eye(2), g=np.zeros((2, 2)), W=-1.0), "W"),
        (dict(f=np.diag([1.0, 2.0]), g=np.zeros((2, 2)), W=1.0), "diagonal of f"),
        (dict(f=np.eye(2), g=np.zeros((2, 2)), W=1.0, delta=[0.0, 1.0, 2.0]), "delta"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(InvalidSystemError, match=match):
        DipoleSystem.from_matrices(**kwargs)


def test_bad_constructor_arguments():
    with pytest.raises(InvalidSystemError, match="spacing"):
        DipoleSystem.chain(4, 0.0, "magic", W=1.0)
    with pytest.raises(InvalidSystemError, match="N must be"):
        DipoleSystem.chain(0, 0.1, "magic", W=1.0)
    with pytest.raises(ValueError, match="theta"):
        DipoleSystem.chain(3, 0.1, "sideways", W=1.0)
    with pytest.raises(InvalidSystemError, match="share a position"):
        DipoleSystem.from_positions(np.zeros((2, 3)), [0, 0, 1], W=1.0)


def test_psd_check_clips_round_off_and_rejects_negatives():
    # A dense chain has subradiant eigenvalues near zero: it must pass.
    s = DipoleSystem.chain(40, 0.05, "magic", W=1.0)
    dec = s.lindblad_decomposition()
    assert np.all(dec.rates >= 0)
    np.testing.assert_allclose(dec.vectors @ np.diag(dec.rates) @ dec.vectors.T, s.f, atol=1e-8)
    # All-to-all with f_eff / N > gamma is not of Lindblad form.
    bad = DipoleSystem.all_to_all(4, f_eff=12.0, W=1.0)
    with pytest.raises(InvalidSystemError, match=r"smallest eigenvalue -2") as exc:
        bad.check_lindblad("method='exact'")
    assert "cumulant" in str(exc.value)


@pytest.mark.parametrize("bad", [[], [1.0, 0.5], [-1.0, 0.0], [0.0, np.nan], [[0.0, 1.0]]])
def test_every_solver_rejects_bad_time_grids(bad):
    import mpsync

    system = DipoleSystem.all_to_all(2, f_eff=1.0, W=2.0)
    for method in ("exact", "permutational", "mpo", "meanfield", "cumulant", "trajectories"):
        with pytest.raises(InvalidSystemError, match="times"):
            mpsync.evolve(system, bad, method=method)
