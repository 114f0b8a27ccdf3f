"""Method suggestions come from one place (mpsync.solvers.applicability) and name only
methods that accept the system: a zoo of systems, each suggested method tried."""

import numpy as np
import pytest

import mpsync
from mpsync.errors import InvalidSystemError, NotApplicableError, TooLargeError, check_memory
from mpsync.solvers import applicability

REFUSALS = (NotApplicableError, TooLargeError, InvalidSystemError)

ZOO = {
    "all-to-all": lambda: mpsync.DipoleSystem.all_to_all(6, f_eff=2.0, W=1.0),
    "chain": lambda: mpsync.DipoleSystem.chain(4, 0.2, "magic", W=2.0),
    "lattice 3x3": lambda: mpsync.DipoleSystem.power_law((3, 3), 1.5, W=2.0),
    "random positions": lambda: mpsync.DipoleSystem.from_positions(
        np.random.default_rng(3).uniform(0, 0.6, size=(5, 3)), [0, 0, 1], W=2.0),
    "non-PSD f": lambda: mpsync.DipoleSystem.all_to_all(4, f_eff=12.0, W=1.0),
    "detuned all-to-all": lambda: mpsync.DipoleSystem.all_to_all(4, f_eff=2.0, W=1.0,
                                                                 delta=[0, 0.1, 0.2, 0.3]),
}
LARGE = {
    "all-to-all N=2000": lambda: mpsync.DipoleSystem.all_to_all(2000, f_eff=20.0, W=10.0),
    "chain N=300": lambda: mpsync.DipoleSystem.chain(300, 0.1, "magic", W=2.0),
    "lattice 20x20": lambda: mpsync.DipoleSystem.power_law((20, 20), 1.5, W=2.0),
    "non-PSD N=500": lambda: mpsync.DipoleSystem.all_to_all(500, f_eff=1000.0, W=1.0),
}
CHEAP = {"mpo": {"max_bond": 4}, "trajectories": dict(ntraj=1, t_burn=0.5, t_avg=0.5, workers=1, seed=1),
         "meanfield": {"t_max": 50.0}}


@pytest.mark.parametrize("name", list(ZOO))
def test_every_suggested_method_accepts_the_system(name):
    system = ZOO[name]()
    suggested = applicability.suggest(system)
    assert suggested, name
    assert "meanfield" in suggested  # needs neither Lindblad form nor symmetry
    for method in suggested:
        try:
            mpsync.steady_state(system, method=method, **CHEAP.get(method, {}))
        except REFUSALS as exc:  # pragma: no cover - the failure being tested for
            pytest.fail(f"{name}: suggested method {method!r} refused it: {exc}")
        except mpsync.ConvergenceError:
            pass  # accepted, just not converged with the cheap options


def _prechecks(method, system):
    """The solvers' own checks, without solving (for systems too large to solve in a test)."""
    n = system.n
    if method == "exact":
        from mpsync.solvers import exact

        system.check_lindblad("exact")
        check_memory(exact.estimate_memory(n) if n <= 20 else float("inf"), "exact")
    elif method == "permutational":
        from mpsync.solvers import permutational

        permutational.rates(system)
    elif method == "mpo":
        from mpsync.solvers.mpo import check_chain

        system.check_lindblad("mpo")
        check_chain(system)
    elif method == "cumulant":
        from mpsync.solvers import cumulant

        assert n >= 2
        check_memory(cumulant.estimate_memory(n), "cumulant")
    elif method == "trajectories":
        from mpsync.solvers.trajectories.statevector import check_size

        system.check_lindblad("trajectories")
        check_size(n, 1)


@pytest.mark.parametrize("name", list(LARGE))
def test_suggestions_for_large_systems_pass_the_solvers_checks(name):
    system = LARGE[name]()
    suggested = applicability.suggest(system)
    assert suggested
    for method in suggested:
        _prechecks(method, system)
    assert "exact" not in suggested and "trajectories" not in suggested


def test_expected_suggestions():
    lattice = mpsync.DipoleSystem.power_law((6, 6), 1.5, W=2.0)
    assert applicability.suggest(lattice) == ["cumulant", "meanfield"]
    a2a = mpsync.DipoleSystem.all_to_all(40, f_eff=10.0, W=5.0)
    assert applicability.suggest(a2a)[0] == "permutational"
    chain = mpsync.DipoleSystem.chain(30, 0.1, "magic", W=2.0)
    assert applicability.suggest(chain)[:2] == ["mpo", "cumulant"]
    bad = ZOO["non-PSD f"]()
    assert applicability.suggest(bad) == ["cumulant", "meanfield"]


@pytest.mark.parametrize("method", list(mpsync.METHODS))
def test_refusals_name_only_accepting_methods(method):
    for name, make in {**ZOO, **LARGE}.items():
        system = make()
        reason = applicability.why_not(method, system)
        if reason is None:
            continue
        with pytest.raises(REFUSALS) as info:
            mpsync.steady_state(system, method=method)
        msg = str(info.value)
        named = [m for m in mpsync.METHODS if f"'{m}'" in msg.split("use method=")[-1]]
        assert named and set(named) <= set(applicability.suggest(system)), (name, msg)


def test_exact_estimate_is_the_one_the_solver_checks(monkeypatch):
    """applicability's exact memory estimate uses the solve's own plan (mirror reduction,
    BiCGStab from N = 12): at N = 14 a mirror chain needs ~7 GB, not the 12-48 GB of
    GMRES or the full sector, so a 10 GiB machine is not told that N = 14 will not fit."""
    from mpsync.solvers import exact

    chain = mpsync.DipoleSystem.chain(14, 0.1, "magic", W=2.0)
    seen = {}

    def capture(nbytes, what, alternatives=""):
        seen["bytes"] = nbytes
        raise TooLargeError("stop before any allocation")

    monkeypatch.setattr(exact, "check_memory", capture)
    with pytest.raises(TooLargeError):
        exact.steady_state(chain)
    assert applicability._memory("exact", chain) == seen["bytes"]
    assert 6e9 < seen["bytes"] < 8e9
    for options in ({"krylov": "gmres"}, {"symmetry": "none"}):
        assert applicability._memory("exact", chain, options=options) > 1.5 * seen["bytes"]
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", str(10 * 2 ** 30))
    assert applicability.why_not("exact", chain) is None
    assert "needs ~" in applicability.why_not("exact", chain, options={"krylov": "gmres"})


def test_two_time_suggestions_name_only_methods_with_two_time():
    from mpsync.solvers import TWO_TIME_METHODS

    chain = mpsync.DipoleSystem.chain(30, 0.1, "magic", W=2.0)
    suggested = applicability.suggest(chain, entry="two_time")
    assert suggested == ["mpo", "cumulant"]
    assert set(suggested) <= set(TWO_TIME_METHODS)
    with pytest.raises(TooLargeError) as err:
        mpsync.two_time(chain, [0.0, 1.0], method="exact")
    assert "meanfield" not in str(err.value) and "'mpo' or 'cumulant'" in str(err.value)
