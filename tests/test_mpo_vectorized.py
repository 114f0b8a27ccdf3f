"""Vectorized-MPS utilities against dense density matrices Tr(rho O)."""

import numpy as np
import pytest

from mpsync.channels import SM, SP, SZ
from mpsync.errors import TooLargeError
from mpsync.solvers.mpo import vectorized as V
from mpsync.states import product_state


def _op(o, a, n):
    out = np.eye(1)
    for b in range(n):
        out = np.kron(out, o if a == b else np.eye(2))
    return out


def _perm(n):
    return [v for a in range(n) for v in (a, n + a)]


def rho_to_vec(rho, n):
    """Row-major vec with interleaved (ket_a, bra_a) site order, site 0 most significant."""
    return rho.reshape([2] * (2 * n)).transpose(_perm(n)).reshape(-1)


def vec_to_rho(vec, n):
    return vec.reshape([2] * (2 * n)).transpose(np.argsort(_perm(n))).reshape(2 ** n, 2 ** n)


def random_rho(rng, n, rank=None):
    d = 2 ** n
    x = rng.normal(size=(d, rank or d)) + 1j * rng.normal(size=(d, rank or d))
    rho = x @ x.conj().T
    return rho / np.trace(rho)


def dense_moments(rho, n):
    tr = np.trace(rho)
    ex = lambda o: np.trace(rho @ o) / tr  # noqa: E731
    sz = np.array([ex(_op(SZ, a, n)) for a in range(n)])
    C = np.array([[ex(_op(SP, a, n) @ _op(SM, b, n)) for b in range(n)] for a in range(n)])
    zz = np.array([[ex(_op(SZ, a, n) @ _op(SZ, b, n)) for b in range(n)] for a in range(n)])
    sm = np.array([ex(_op(SM, a, n)) for a in range(n)])
    zsm = np.array([[ex(_op(SZ, a, n) @ _op(SM, b, n)) for b in range(n)] for a in range(n)])
    smsm = np.array([[ex(_op(SM, a, n) @ _op(SM, b, n)) for b in range(n)] for a in range(n)])
    return sz, C, zz, sm, zsm, smsm


def test_vectorisation_convention(rng):
    """A single site: s = 2 i + j, and Tr(rho O) = sum_s A[s] (O^T)[s]."""
    rho = random_rho(rng, 1)
    mps = V.product_mps([rho])
    assert np.allclose(V.to_dense_vector(mps), [rho[0, 0], rho[0, 1], rho[1, 0], rho[1, 1]])
    o = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    assert np.isclose(V.to_dense_vector(mps) @ V.covector(o), np.trace(rho @ o))
    assert np.isclose(V.expectation(mps, {0: o}), np.trace(rho @ o))


def test_moments_of_random_mps_equal_dense(rng):
    n = 4
    rho = random_rho(rng, n)
    mps = V.from_dense_vector(rho_to_vec(rho, n), n, max_bond=3)
    assert max(V.bond_dims(mps)) == 3
    rho3 = vec_to_rho(V.to_dense_vector(mps), n)  # the truncated state is what we test
    assert np.allclose(rho3, rho3.conj().T, atol=1e-12)
    rho3 = rho3 * 2.7  # an unnormalised trace must not matter
    sz, C, zz, sm, zsm, smsm = dense_moments(rho3, n)
    m = V.moments(mps, coherences=True)
    off = ~np.eye(n, dtype=bool)
    assert np.max(np.abs(m.sz - sz)) < 1e-12
    assert np.max(np.abs(m.correlations - C)) < 1e-12
    assert np.max(np.abs(m.zz - zz)) < 1e-12
    assert np.max(np.abs(m.sm - sm)) < 1e-12
    assert np.max(np.abs((m.zsm - zsm)[off])) < 1e-12
    assert np.max(np.abs((m.smsm - smsm)[off])) < 1e-12
    assert V.trace(mps) == pytest.approx(np.trace(rho3) / 2.7, abs=1e-12)


def test_moments_of_u1_state_omit_coherences(rng):
    """A state with no coherence between excitation sectors: <s-> = 0, 'auto' omits sm."""
    n = 3
    rho = random_rho(rng, n)
    exc = np.array([bin(k).count("1") for k in range(2 ** n)])
    rho = rho * (exc[:, None] == exc[None, :])
    mps = V.from_dense_vector(rho_to_vec(rho, n), n)
    m = V.moments(mps)
    assert m.sm is None
    sz, C, zz, *_ = dense_moments(rho, n)
    assert np.max(np.abs(m.correlations - C)) < 1e-12
    assert np.max(np.abs(m.zz - zz)) < 1e-12


def test_product_state_moments_and_trace():
    n = 5
    up, down, x = (product_state(k, 1)[0] for k in ("up", "down", "x"))
    states = [up, down, x, up, x]
    mps = V.product_mps(states)
    assert V.bond_dims(mps) == [1] * (n - 1)
    assert V.trace(mps) == pytest.approx(1.0)
    m = V.moments(mps)
    assert np.allclose(m.sz, [1, -1, 0, 1, 0])
    sp = np.array([0, 0, 0.5, 0, 0.5])  # <s+_a>
    expected = np.outer(sp, sp.conj())
    np.fill_diagonal(expected, (1 + m.sz) / 2)
    assert np.allclose(m.correlations, expected)
    assert np.allclose(m.zz, np.outer(m.sz, m.sz) + np.diag(1 - m.sz ** 2))
    assert np.allclose(m.sm, sp)


def test_long_chain_scaled_product_state_stays_finite():
    """Moments are ratios: a state scaled by 5 per site (trace 5^200) still gives them."""
    n = 200
    p = 0.3
    mps = [5.0 * a for a in V.product_mps([np.diag([1 - p, p])] * n)]
    assert abs(V.trace(mps)) == pytest.approx(5.0 ** n, rel=1e-10)
    m = V.moments(mps)
    assert np.allclose(m.sz, 2 * p - 1)
    assert np.allclose(m.zz[0, -1], (2 * p - 1) ** 2)
    assert abs(V.trace(V.normalize_trace(mps)) - 1) < 1e-10


def test_normalize_trace_and_hermitian_part(rng):
    n = 4
    x = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    mps = V.from_dense_vector(rho_to_vec(x, n), n)
    norm = V.normalize_trace(mps)
    assert V.trace(norm) == pytest.approx(1.0, abs=1e-12)
    xt = x / np.trace(x)
    assert np.allclose(vec_to_rho(V.to_dense_vector(norm), n), xt)
    dag = V.hermitian_conjugate(mps)
    assert np.allclose(vec_to_rho(V.to_dense_vector(dag), n), x.conj().T)
    herm = V.hermitian_part(mps)
    assert np.allclose(vec_to_rho(V.to_dense_vector(herm), n), (x + x.conj().T) / 2)


def test_compress_and_canonicalize(rng):
    n = 5
    rho = random_rho(rng, n, rank=1)  # a pure state: Schmidt rank <= 4 at every cut of rho
    mps = V.from_dense_vector(rho_to_vec(rho, n), n)
    padded = V.add(mps, mps, 0.5, 0.5)  # same state, doubled bonds
    assert max(V.bond_dims(padded)) == 2 * max(V.bond_dims(mps))
    small = V.compress(padded, cutoff=1e-12)
    assert V.bond_dims(small) == V.bond_dims(mps)
    assert np.allclose(V.to_dense_vector(small), V.to_dense_vector(mps), atol=1e-12)
    can = V.canonicalize(mps, center=2)
    a0 = can[0].reshape(-1, can[0].shape[2])
    assert np.allclose(a0.conj().T @ a0, np.eye(a0.shape[1]))
    b4 = can[4].reshape(can[4].shape[0], -1)
    assert np.allclose(b4 @ b4.conj().T, np.eye(b4.shape[0]))
    assert np.allclose(V.to_dense_vector(can), V.to_dense_vector(mps))
    capped = V.compress(mps, max_bond=2)
    assert max(V.bond_dims(capped)) == 2


def test_dense_helpers_refuse_large_n():
    with pytest.raises(TooLargeError):
        V.to_dense_vector(V.product_mps(product_state("down", 12)))
