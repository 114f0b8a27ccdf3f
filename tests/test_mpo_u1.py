"""The MPO solver's U(1) block-sparse engine (mpsync/solvers/mpo/u1.py) against the dense one.

The blocks change how each contraction is done, never the state: every check here
compares with the dense engine on the same input, or with an exact solution.
"""

import numpy as np
import pytest

import mpsync
from mpsync import DipoleSystem
from mpsync.errors import InvalidOptionError
from mpsync.solvers.mpo import ladder, tdvp, u1
from mpsync.solvers.mpo.prepare import build_mpo, initial_mps

pytestmark = pytest.mark.skipif(not u1.available(), reason="symmray not installed")


@pytest.fixture(scope="module")
def chain6():
    return DipoleSystem.chain(6, 0.1, "magic", W=2.0)


def test_charge_gauge_round_trip_keeps_the_state(chain6):
    ss = mpsync.steady_state(chain6, method="mpo", max_bond=16, symmetry="none")
    dense = mpsync.solvers.mpo.from_quimb(ss.state)
    blocks = u1.mps_to_blocks(dense)
    back = u1.mps_to_dense(blocks)
    # compared as 4^6 vectors: tdvp.distance (norms minus overlaps) cannot resolve below ~1e-8
    from mpsync.solvers.mpo.vectorized import to_dense_vector

    a, b = to_dense_vector(back), to_dense_vector(dense)
    # (what is dropped is the dense engine's charge noise, 1.4e-10 relative here)
    assert np.linalg.norm(a - b) < 1e-9 * np.linalg.norm(b)
    # every site tensor is charge-conserving: blocks only where q_left + q_site = q_right
    for x in blocks:
        for sector in x.blocks:
            assert x.is_valid_sector(sector)
    # converted again (right-canonical, charge basis already): the same arrays exactly
    again = u1.mps_to_dense(u1.mps_to_blocks(back, canonical=True))
    assert all(np.array_equal(a, b) for a, b in zip(again, back))


def test_mpo_blocks_are_the_same_liouvillian(chain6):
    mpo, _ = build_mpo(chain6)
    blocks = u1.mpo_to_blocks(mpo)
    from mpsync.solvers.mpo.liouvillian import mpo_to_dense

    dense = np.asarray(mpo_to_dense(mpo, max_n=6))
    back = []
    for M in blocks:
        maps = [u1._index_map(ix) for ix in M.indices]
        maps[2] = maps[3] = list(map(int, u1.Q_SITE))
        back.append(np.asarray(M.to_dense(index_maps=maps)))
    assert np.allclose(np.asarray(mpo_to_dense(back, max_n=6)), dense, atol=1e-10 * np.abs(dense).max())


@pytest.mark.parametrize("one_site", [False, True])
def test_block_tdvp_steps_equal_dense_steps(chain6, one_site):
    mpo, _ = build_mpo(chain6)
    start = initial_mps("down", 6, "numpy")
    # full bond (4^3): no truncation, so both engines integrate the same flow (with
    # truncation they differ at its level: the blocks keep a degenerate multiplet whole)
    dense = tdvp.TDVP(mpo, start, max_bond=64)
    blocks = u1.BlockTDVP(mpo, start, max_bond=64)
    for _ in range(4):                       # two-site steps grow the bonds from 1
        dense.step(0.1)
        blocks.step(0.1)
    for _ in range(3):
        (dense.step1 if one_site else dense.step)(0.5)
        (blocks.step1 if one_site else blocks.step)(0.5)
    a = _dense_vector(tdvp.trace_normalized(dense.state()))
    b = _dense_vector(tdvp.trace_normalized(blocks.state()))
    # on the dense vectors: tdvp.distance's floor is sqrt(machine epsilon) ~ 1.5e-8
    assert np.linalg.norm(b - a) <= 1e-10 * np.linalg.norm(a)
    assert blocks.matvecs == dense.matvecs


def _dense_vector(mps):
    """The 4^N vector of a (small) MPS given as a list of (chi, 4, chi') arrays."""
    v = np.asarray(mps[0])
    for A in mps[1:]:
        v = np.tensordot(v, np.asarray(A), axes=([-1], [0]))
    return v.reshape(-1)


def test_ladder_with_blocks_equals_dense_ladder_and_exact():
    system = DipoleSystem.chain(8, 0.1, "magic", W=2.0)
    opts = dict(method="mpo", ladder=(16, 32, 64))
    a = mpsync.steady_state(system, symmetry="none", **opts)
    b = mpsync.steady_state(system, **opts)
    assert b.diagnostics["symmetry"] == "U1" and a.diagnostics["symmetry"] == "none"
    assert abs(float(a.ZQ) - float(b.ZQ)) < 1e-8
    assert np.abs(a.correlations - b.correlations).max() < 1e-8
    exact = mpsync.steady_state(system, method="exact")
    assert abs(float(b.ZQ) - float(exact.ZQ)) <= b.errors["ZQ"]


def test_block_checkpoint_resumes_the_run(killed_mpo_run):
    """Killed inside a block rung (chi = 32), the run resumes to the same answer."""
    system = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    opts = dict(method="mpo", ladder=(16, 32), checkpoint_every=2)
    full = mpsync.steady_state(system, **opts)
    path = killed_mpo_run(system, opts, kill_after=7)
    resumed = mpsync.steady_state(system, resume=path, **opts)
    assert resumed.diagnostics["steps"] == full.diagnostics["steps"]
    assert abs(resumed.errors["ZQ"] - full.errors["ZQ"]) < 1e-12
    assert np.abs(resumed.correlations - full.correlations).max() < 1e-12


def test_symmetry_option_is_checked_before_work():
    system = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    with pytest.raises(InvalidOptionError, match="symmetry"):
        mpsync.steady_state(system, method="mpo", symmetry="SU2")
    with pytest.raises(InvalidOptionError, match="symmetry='none'"):
        mpsync.steady_state(system, method="mpo", symmetry="U1", like="torch")


def test_coherent_initial_state_relaxes_to_the_same_steady_state(chain6):
    """initial="x" has weight outside the charge-0 sector: the first rung stays dense,
    the next one runs on blocks, and the answer is the exact steady state."""
    exact = float(mpsync.steady_state(chain6, method="exact").ZQ)
    for initial in ("down", "x"):
        ss = mpsync.steady_state(chain6, method="mpo", ladder=(32, 64), initial=initial)
        assert ss.diagnostics["stop_reason"] == "exact_bond"
        assert abs(float(ss.ZQ) - exact) < 1e-6


def test_time_budget_falls_back_across_the_switch_to_blocks(monkeypatch):
    """The budget runs out in the first block rung (chi = 32): the result is the dense
    chi = 16 rung's state, read from the dense engine."""
    system = DipoleSystem.chain(8, 0.1, "magic", W=2.0)
    real = ladder.relax

    def relax_until_blocks(engine, *args, **kwargs):
        if isinstance(engine, u1.BlockTDVP):
            raise ladder._OverBudget        # what on_step raises once the budget is spent
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(ladder, "relax", relax_until_blocks)
    with pytest.warns(mpsync.errors.ConvergenceWarning, match="time_budget"):
        ss = mpsync.steady_state(system, method="mpo", ladder=(16, 32), zq_tol=1e-12, time_budget=1e6)
    d = ss.diagnostics
    assert d["stop_reason"] == "time_budget" and [r["max_bond"] for r in d["ladder"]] == [16]
    assert abs(float(ss.ZQ) - d["ladder"][0]["ZQ"]) < 1e-12
    assert d["max_bond"] <= 16


def test_evolve_goes_on_to_blocks_and_matches_dense():
    system = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    times = [0.0, 0.5, 1.0, 2.0]
    a = mpsync.evolve(system, times, "down", method="mpo", max_bond=64, symmetry="none")
    b = mpsync.evolve(system, times, "down", method="mpo", max_bond=64)
    assert a.diagnostics["symmetry"] == "none" and b.diagnostics["symmetry"] == "U1"
    assert np.abs(np.asarray(a.sz) - np.asarray(b.sz)).max() < 1e-8
    assert np.abs(np.asarray(a.ZQ) - np.asarray(b.ZQ)).max() < 1e-8
    # coherent initial state: stays dense
    c = mpsync.evolve(system, [0.0, 0.5], "x", method="mpo", max_bond=64)
    assert c.diagnostics["symmetry"] == "none"


def test_charge_minus_one_propagation_equals_dense():
    """s-_b rho (charge -1, carried by the right edge) on blocks: the two-time functions'
    propagation equals the dense one, for one lowered site and for J- rho."""
    from mpsync.solvers.mpo import regression

    chain5 = DipoleSystem.chain(5, 0.1, "magic", W=2.0)
    mpo, _ = build_mpo(chain5)
    # bond 16 is the full bond dimension at N = 5: no truncation cuts a +q/-q pair, so
    # the state is exactly charge 0 (correlated: all down, then pumped)
    eng = tdvp.TDVP(mpo, initial_mps("down", 5, "numpy"), max_bond=16)
    for _ in range(5):
        eng.step(0.2)
    rho = tdvp.trace_normalized(eng.state())
    taus = [0.0, 0.1, 0.3]
    for X0 in (regression.apply_lowering(rho, 2), regression.apply_collective_lowering(rho)):
        blocks = u1.BlockTDVP(mpo, X0, max_bond=16, charge=-1)
        assert blocks.charge_leak < 1e-12
        dense, info_d = regression.propagate(mpo, X0, taus, 16, 0.1, 1e-10, 1e-10, 30)
        got, info_b = regression.propagate(mpo, X0, taus, u1.BLOCKS_FROM_CHI, 0.1, 1e-10, 1e-10, 30,
                                           symmetry="U1")
        assert info_b["engine"] == "U1 blocks" and info_d["engine"] == "dense"
        np.testing.assert_allclose(got, dense, atol=1e-11 * np.abs(dense).max())
        assert np.abs(dense[0]).max() > 1e-3       # not a trivially zero comparison
