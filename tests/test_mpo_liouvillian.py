"""The Liouvillian MPO against a dense Liouvillian built independently from
mpsync.channels (and against the exact solver's sparse Liouvillian when present)."""

import numpy as np
import pytest
from conftest import random_g, random_psd_f

from mpsync import DipoleSystem
from mpsync.channels import (SM, SP, bra_superop, ket_superop, local_generator,
                             pair_channel_coefficients)
from mpsync.errors import NotApplicableError
from mpsync.solvers import exact
from mpsync.solvers.mpo import vectorized as V
from mpsync.solvers.mpo.liouvillian import (compress_coefficients, liouvillian_mpo, mpo_apply,
                                            mpo_expectation, residual_norm)


# ----------------------------------------------------------------------------- references
def _site_op(op, a, n):
    out = np.eye(1)
    for b in range(n):
        out = np.kron(out, op if b == a else np.eye(4))
    return out


def dense_liouvillian(system):
    """Interleaved-order dense Liouvillian, term by term from docs/physics.md#channels (N <= 5)."""
    n = system.n
    L = sum(_site_op(local_generator(system.delta[a], system.f[a, a], system.W), a, n)
            for a in range(n))
    ket, bra, cross = pair_channel_coefficients(system.f, system.g)
    for a in range(n):
        for b in range(n):
            if a != b:
                L = L + ket[a, b] * _site_op(ket_superop(SP), a, n) @ _site_op(ket_superop(SM), b, n)
                L = L + bra[a, b] * _site_op(bra_superop(SP), a, n) @ _site_op(bra_superop(SM), b, n)
                L = L + cross[a, b] * _site_op(bra_superop(SP), a, n) @ _site_op(ket_superop(SM), b, n)
    return L


def mpo_matvec(tensors, vec):
    """L @ vec for a dense 4^N vector, contracting the MPO site by site."""
    n = len(tensors)
    x = vec.reshape((1,) + (4,) * n)  # (bond, s_0, ..., s_{n-1})
    for w in tensors:
        # bond first, this site at axis 1; finished sites are rolled to the end in order
        x = np.tensordot(w, x, axes=([0, 3], [0, 1]))  # (Dr, out, rest...)
        x = np.moveaxis(x, 1, -1)
    return x.reshape(-1)


def random_system(rng, n, W=1.3):
    return DipoleSystem.from_matrices(random_psd_f(rng, n), random_g(rng, n), W=W,
                                      delta=rng.normal(size=n))


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("compress", [False, True])
def test_mpo_equals_dense_reference(rng, n, compress):
    system = random_system(rng, n)
    mpo = liouvillian_mpo(system, cutoff=0.0, compress=compress)
    assert len(mpo.tensors) == n
    assert mpo.tensors[0].shape[0] == 1 and mpo.tensors[-1].shape[1] == 1
    L = dense_liouvillian(system)
    assert np.max(np.abs(mpo.to_dense() - L)) < 1e-10 * max(1.0, np.max(np.abs(L)))


def test_dense_reference_is_the_master_equation(rng):
    """The test's own reference against -i[H, rho] + L_f + L_W applied to a matrix."""
    n = 3
    system = random_system(rng, n)
    L = dense_liouvillian(system)
    x = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))

    def op(o, a):
        out = np.eye(1)
        for b in range(n):
            out = np.kron(out, o if a == b else np.eye(2))
        return out

    sp = [op(SP, a) for a in range(n)]
    sm = [op(SM, a) for a in range(n)]
    H = sum(0.5 * system.delta[a] * (sp[a] @ sm[a] - sm[a] @ sp[a]) for a in range(n))
    H = H + sum(0.5 * system.g[a, b] * sp[a] @ sm[b] for a in range(n) for b in range(n) if a != b)
    rhs = -1j * (H @ x - x @ H)
    for a in range(n):
        for b in range(n):
            rhs += 0.5 * system.f[a, b] * (2 * sm[b] @ x @ sp[a] - sp[a] @ sm[b] @ x - x @ sp[a] @ sm[b])
        rhs += 0.5 * system.W * (2 * sp[a] @ x @ sm[a] - sm[a] @ sp[a] @ x - x @ sm[a] @ sp[a])
    perm = [v for a in range(n) for v in (a, n + a)]
    to_vec = lambda m: m.reshape([2] * (2 * n)).transpose(perm).reshape(-1)  # noqa: E731
    assert np.allclose(L @ to_vec(x), to_vec(rhs), atol=1e-12)


@pytest.mark.parametrize("n", [5, 6])
def test_uncompressed_matches_exact_solver_liouvillian(rng, n):
    system = DipoleSystem.chain(n, 0.15, "magic", W=2.0, delta=rng.normal(size=n) * 0.5)
    L = exact.liouvillian(system, ordering="interleaved")
    for compress in (False, True):
        mpo = liouvillian_mpo(system, cutoff=0.0, compress=compress)
        for _ in range(3):
            v = rng.normal(size=4 ** n) + 1j * rng.normal(size=4 ** n)
            ref = L @ v
            assert np.linalg.norm(mpo_matvec(mpo.tensors, v) - ref) < 1e-10 * np.linalg.norm(ref)


@pytest.mark.parametrize("cutoff", [1e-4, 1e-7])
def test_compressed_within_tolerance(rng, cutoff):
    n = 6
    system = DipoleSystem.chain(n, 0.1, 0.0, W=2.0)
    exact_mpo = liouvillian_mpo(system, compress=False)
    mpo = liouvillian_mpo(system, cutoff=cutoff, measure_error=True)
    assert max(mpo.bond_dims) < max(exact_mpo.bond_dims)
    scale = np.max(np.abs(system.g)) + np.max(np.abs(system.f))
    # coefficients represented to within the relative cutoff (a few cuts accumulate)
    assert max(mpo.coefficient_error.values()) < 10 * cutoff * scale
    # the operator: each coefficient error moves ||L v|| by at most |dK| ||v||
    v = rng.normal(size=4 ** n) + 1j * rng.normal(size=4 ** n)
    d = np.linalg.norm(mpo_matvec(mpo.tensors, v) - mpo_matvec(exact_mpo.tensors, v))
    bound = sum(mpo.coefficient_error.values()) * n * n * np.linalg.norm(v)
    assert d <= bound
    assert d < 1e3 * cutoff * scale * np.linalg.norm(v)


def test_compression_on_coefficients_recovers_low_rank(rng):
    """A rank-2 coefficient matrix needs 2 pending states at every interior cut."""
    n = 12
    u = rng.normal(size=(n, 2))
    k = u @ rng.normal(size=(2, n))
    c = compress_coefficients(k, cutoff=1e-12)
    assert max(c.ranks) <= 2
    assert np.allclose(c.effective_matrices()[0], np.triu(k, 1), atol=1e-12)
    plain = compress_coefficients(k, compress=False)
    assert np.allclose(plain.effective_matrices()[0], np.triu(k, 1), atol=1e-14)


@pytest.mark.parametrize("theta", ["magic", 0.0])
def test_n70_dipolar_chain_bond_dimension(theta):
    system = DipoleSystem.chain(70, 0.1, theta, W=2.0)
    mpo = liouvillian_mpo(system, cutoff=1e-8, measure_error=True)
    assert len(mpo.bond_dims) == 69
    assert max(mpo.bond_dims) <= 60
    scale = np.max(np.abs(system.g)) + 1.0
    assert max(mpo.coefficient_error.values()) < 1e-6 * scale
    looser = liouvillian_mpo(system, cutoff=1e-6)
    assert max(looser.bond_dims) < max(mpo.bond_dims)
    assert set(mpo.channel_ranks) == {"ket<", "ket>+cross>", "bra<+cross<", "bra>"}


def test_max_bond_caps_the_mpo():
    system = DipoleSystem.chain(30, 0.1, "magic", W=2.0)
    mpo = liouvillian_mpo(system, cutoff=1e-12, max_bond=26)
    assert max(mpo.bond_dims) <= 26
    assert mpo.truncation_error > 1e-12


def test_non_chain_refused():
    pos = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0.1, 0.1, 0]])
    system = DipoleSystem.from_positions(pos, [0, 0, 1], W=2.0)
    with pytest.raises(NotApplicableError, match="exact"):
        liouvillian_mpo(system)
    with pytest.raises(NotApplicableError, match="cumulant"):
        liouvillian_mpo(DipoleSystem.power_law((2, 3), 1.5, W=1.0))
    # collinear positions and matrices without positions are accepted
    liouvillian_mpo(DipoleSystem.from_positions(np.outer(np.arange(4), [1, 1, 0]) * 0.1, [0, 0, 1], 1.0))
    liouvillian_mpo(DipoleSystem.all_to_all(5, 2.0, W=1.0))


def _random_mps(rng, n, chi):
    dims = [1] + [chi] * (n - 1) + [1]
    return [rng.normal(size=(dims[a], 4, dims[a + 1])) + 1j * rng.normal(size=(dims[a], 4, dims[a + 1]))
            for a in range(n)]


def test_apply_expectation_and_residual_against_dense(rng):
    n = 4
    system = random_system(rng, n)
    mpo = liouvillian_mpo(system, cutoff=1e-12)
    L = dense_liouvillian(system)
    mps = _random_mps(rng, n, 3)
    other = _random_mps(rng, n, 2)
    v = V.to_dense_vector(mps)
    w = V.to_dense_vector(other)
    lv = L @ v
    assert np.allclose(V.to_dense_vector(mpo_apply(mpo, mps)), lv, atol=1e-10)
    assert np.allclose(mpo_expectation(mpo, other, mps), np.vdot(w, lv), atol=1e-10)
    ratio, ln, rn = residual_norm(mpo, mps, return_norm=True)
    assert ln == pytest.approx(np.linalg.norm(lv), rel=1e-10)
    assert rn == pytest.approx(np.linalg.norm(v), rel=1e-10)
    assert ratio == pytest.approx(np.linalg.norm(lv) / np.linalg.norm(v), rel=1e-10)
    compressed = mpo_apply(mpo, mps, max_bond=64, cutoff=1e-14)
    assert np.allclose(V.to_dense_vector(compressed), lv, atol=1e-9)


def test_residual_of_exact_steady_state_is_small():
    """The single-atom steady state (and a product of them with f = delta_ab) is a null vector."""
    n = 3
    system = DipoleSystem.from_matrices(np.eye(n), np.zeros((n, n)), W=1.5)
    p = 1.5 / 2.5  # excited population W / (W + Gamma)
    mps = V.product_mps([np.diag([1 - p, p])] * n)
    assert residual_norm(liouvillian_mpo(system), mps) < 1e-14
    assert residual_norm(liouvillian_mpo(system), V.product_mps([np.diag([1.0, 0.0])] * n)) > 0.1
