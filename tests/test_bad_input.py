"""Bad input through the CLI and the API: one clear line, exit code 2 (CLI) or an
MpsyncError subclass (API), no traceback, before any heavy work, and the method
that would work named where there is one. Tiny systems only: the whole file runs
in seconds."""

import os
import time

import numpy as np
import pytest

import mpsync
from mpsync.cli import main
from mpsync.errors import (InvalidOptionError, InvalidSiteError, InvalidSystemError, MpsyncError,
                           NotApplicableError, OutputPathError, TooLargeError)

CHAIN = ["--model", "chain", "--n", "3", "--spacing", "0.1", "--W", "2"]
LATTICE = ["--model", "power-law", "--shape", "6x6", "--alpha", "1.5", "--W", "2"]
A2A_40 = ["--model", "all-to-all", "--n", "40", "--f-eff", "10", "--W", "5"]
NON_PSD = ["--model", "all-to-all", "--n", "4", "--f-eff", "12", "--W", "1"]
EVOLVE = ["evolve", *CHAIN, "--t-max", "1", "--steps", "2"]


def _cli(capsys, argv, cwd=None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        t0 = time.perf_counter()
        code = main(list(argv))
        seconds = time.perf_counter() - t0
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, out, err, seconds


# (argv, fragments the line must contain, fragments it must not contain)
CLI_CASES = [
    (["steady", "--model", "chain", "--n", "3", "--W", "2"], ["--spacing"], []),
    (["steady", "--model", "chain", "--n", "3", "--spacing", "-0.1", "--W", "2"], ["spacing"], []),
    (["steady", *CHAIN[:-1], "-1"], ["pump"], []),
    (["steady", "--model", "all-to-all", "--n", "3", "--W", "1"], ["--f-eff"], []),
    (["steady", *NON_PSD], ["eigenvalue", "'cumulant'", "'meanfield'"], ["'mpo'", "'trajectories'"]),
    (["steady", *NON_PSD, "--method", "trajectories"], ["positive semidefinite", "'cumulant'"], []),
    (["steady", *CHAIN, "--method", "magic"], ["unknown method"], []),
    (["steady", *CHAIN, "--delta", "1,2"], ["detunings"], []),
    (["steady", "--model", "chain", "--n", "5", "--spacing", "0.1", "--W", "2", "--delta", "1,,2,3,4"],
     ["--delta", "empty"], []),
    (["steady", "--model", "power-law", "--n", "3", "--W", "2"], ["--alpha"], []),
    (["steady", *CHAIN, "--bogus"], ["unrecognized"], []),
    (["steady", "--model", "chain", "--n", "30", "--spacing", "0.1", "--W", "2"], ["'mpo'", "'cumulant'"], []),
    (["steady", *CHAIN, "--theta", "7"], ["theta", "radians"], []),
    (["steady", *CHAIN, "--theta", "abc"], ["theta"], []),
    (["steady", *CHAIN, "--tol", "-1"], ["tol", "> 0"], []),
    (["steady", *CHAIN, "--method", "mpo", "--cutoff", "-1"], ["cutoff", ">= 0"], []),
    (["steady", *CHAIN, "--method", "trajectories", "--workers", "0"], ["workers", "> 0"], []),
    (["steady", "--model", "power-law", "--n", "5", "--shape", "3x3", "--alpha", "1", "--W", "2"],
     ["shape"], []),
    (["steady", *CHAIN, "--method", "cumulant", "--opt", "tol=abc"], ["tol", "number"], []),
    (["steady", *CHAIN, "--method", "meanfield", "--opt", "t_max=abc"], ["t_max", "number"], []),
    (["steady", *CHAIN, "--method", "trajectories", "--opt", "dt=[1,2]"], ["dt"], []),
    (["steady", *CHAIN, "--method", "exact", "--opt", "tl=1e-8"], ["did you mean 'tol'"], []),
    (["steady", *CHAIN, "--method", "exact", "--max-bond", "8"], ["--max-bond", "exact"], []),
    (["steady", *CHAIN, "--method", "exact", "--t-max", "10"], ["--t-max", "exact"], []),
    (["steady", *CHAIN, "--method", "exact", "--workers", "2"], ["--workers", "exact"], []),
    (["steady", *CHAIN, "--save", "nodir/x.npz"], ["nodir", "does not exist"], []),
    (["steady", *CHAIN, "--method", "mpo", "--checkpoint", "nodir/ck.npz"], ["nodir", "does not exist"], []),
    (["steady", *CHAIN, "--method", "mpo", "--resume", "missing.npz"], ["missing.npz", "not found"], []),
    (["steady", *LATTICE, "--method", "exact"], ["N=36", "'cumulant'"], ["'mpo'", "'trajectories'"]),
    (["steady", *LATTICE, "--method", "mpo"], ["1D chains", "'cumulant'"], ["'trajectories'", "'exact'"]),
    (["steady", *LATTICE, "--method", "trajectories"], ["N=36", "'cumulant'"], ["'mpo'"]),
    (["steady", *A2A_40, "--method", "exact"], ["'permutational'"], []),
    (["steady", *CHAIN, "--method", "permutational"], ["permutation-symmetric", "'exact'"], []),
    (["steady", *CHAIN, "--delta-spread", "-1"], ["delta_spread"], []),
    (["steady", *CHAIN, "--delta", "1", "--delta-spread", "1"], ["not both"], []),
    (["steady", "--model", "chain", "--n", "0", "--spacing", "0.1", "--W", "2"], ["--n"], []),
    (["steady", *CHAIN[:-1], "nan"], ["--W"], []),
    (["steady", "--model", "all-to-all", "--n", "3", "--f-eff", "1", "--spacing", "0.1", "--W", "1"],
     ["--spacing", "does not apply"], []),
    (["steady", *CHAIN, "--gamma", "0"], ["gamma"], []),
    (["steady", *CHAIN, "--method", "trajectories", "--unravelling", "teleport"], ["unravelling"], []),
    (["steady", *CHAIN, "--opt", "tol"], ["KEY=VALUE"], []),
    (["steady", *CHAIN, "--seed", "3"], ["--seed"], []),
    (["steady", *CHAIN, "--delta-seed", "3"], ["--delta-spread"], []),
    ([*EVOLVE[:-4], "--t-max", "-1"], ["--t-max"], []),
    ([*EVOLVE[:-2], "--steps", "0"], ["--steps"], []),
    ([*EVOLVE, "--initial", "sideways"], ["initial state"], []),
    ([*EVOLVE, "--method", "permutational"], ["permutation-symmetric", "'exact'"], []),
    ([*EVOLVE, "--method", "exact", "--opt", "dt=0.1"], ["'dt'", "exact"], []),
    (["sweep", "no-such-spec.toml"], ["not found"], []),
    (["demo", "--quick", "--out", "/dev/null/sub"], ["output folder", "not a folder"], []),
    (["validate", "--quick", "--out", "/dev/null/agreement.md"], ["agreement table", "not a folder"], []),
]


@pytest.mark.parametrize("argv, must, must_not", CLI_CASES,
                         ids=[f"{i:02d}-" + "_".join(c[0][1:])[:60] for i, c in enumerate(CLI_CASES)])
def test_cli_bad_input(capsys, tmp_path, argv, must, must_not):
    code, out, err, seconds = _cli(capsys, argv, cwd=tmp_path)
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for frag in must:
        assert frag in lines[0], lines[0]
    for frag in must_not:
        assert frag not in lines[0], lines[0]
    assert seconds < 10, f"took {seconds:.1f} s: the error should come before any heavy work"
    assert not list(tmp_path.iterdir()), "nothing is written on a refused run"


def _spec(tmp_path, run="", solver='method = "exact"', system=None, name="spec.toml"):
    system = system or 'model = "all-to-all"\nn = 3\nf_eff = 1.0\nW = 1.0'
    text = f"[system]\n{system}\n\n[grid]\nW = [0.5, 1.0]\n\n[solver]\n{solver}\n\n[run]\n{run}\n"
    p = tmp_path / name
    p.write_text(text)
    return p


SPEC_CASES = [
    (dict(run="workrs = 2"), ["workrs", "did you mean 'workers'"]),
    (dict(run="workers = 0"), ["workers"]),
    (dict(system='model = "ring"\nn = 3\nW = 1.0'), ["unknown model", "ring"]),
    (dict(system='model = "chain"\nn = 3\nspacng = 0.1\nW = 1.0'), ["spacng", "did you mean 'spacing'"]),
    (dict(solver='method = "exact"\nmax_bond = 8'), ["max_bond", "exact"]),
    (dict(solver='method = "exact"\ntol = "abc"'), ["tol", "number"]),
    (dict(run='out = "afile/x.nc"'), ["afile", "not a folder"]),
    (dict(run='out = "x.csv"'), ["format"]),
    (dict(system='model = "all-to-all"\nn = 3\nf_eff = 1.0\nW = 1.0\n[oops'), ["TOML"]),
]


@pytest.mark.parametrize("kw, must", SPEC_CASES, ids=[f"spec{i}" for i in range(len(SPEC_CASES))])
def test_sweep_spec_bad_input(capsys, tmp_path, kw, must):
    (tmp_path / "afile").write_text("a file, not a folder")
    spec = _spec(tmp_path, **kw)
    code, out, err, seconds = _cli(capsys, ["sweep", str(spec), "--no-progress"], cwd=tmp_path)
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for frag in must:
        assert frag in lines[0], lines[0]
    assert not (tmp_path / ".mpsync-cache").exists() or not any((tmp_path / ".mpsync-cache").rglob("*.json"))


def test_unreachable_scheduler_fails_within_seconds(capsys, tmp_path):
    pytest.importorskip("dask.distributed")
    spec = _spec(tmp_path)
    code, out, err, seconds = _cli(capsys, ["sweep", str(spec), "--scheduler", "tcp://127.0.0.1:1",
                                            "--scheduler-timeout", "1", "--no-progress"], cwd=tmp_path)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "tcp://127.0.0.1:1" in lines[0] and "Traceback" not in err
    assert seconds < 8


# ---------------------------------------------------------------------- API
S3 = mpsync.DipoleSystem.chain(3, 0.1, "magic", W=2.0)
LAT = mpsync.DipoleSystem.power_law((6, 6), 1.5, W=2.0)
BAD_F = mpsync.DipoleSystem.all_to_all(4, f_eff=12.0, W=1.0)


def _steady(method, system=S3, **opts):
    return lambda: mpsync.steady_state(system, method=method, **opts)


API_CASES = [
    ("exact tol=-1", _steady("exact", tol=-1.0), InvalidOptionError, ["tol"]),
    ("exact unknown", _steady("exact", max_bond=8), InvalidOptionError, ["max_bond", "its options are"]),
    ("cumulant tol str", _steady("cumulant", tol="abc"), InvalidOptionError, ["tol"]),
    ("trajectories dt list", _steady("trajectories", dt=[1, 2]), InvalidOptionError, ["dt"]),
    ("unknown method", _steady("nope"), MpsyncError, ["unknown method"]),
    ("permutational chain", _steady("permutational"), NotApplicableError, ["'exact'"]),
    ("mpo lattice", _steady("mpo", LAT), NotApplicableError, ["'cumulant'"]),
    ("exact lattice", _steady("exact", LAT), TooLargeError, ["'cumulant'"]),
    ("trajectories non-PSD", _steady("trajectories", BAD_F), InvalidSystemError, ["'cumulant'"]),
    ("theta 7", lambda: mpsync.DipoleSystem.chain(3, 0.1, 7, W=1.0), InvalidSystemError, ["radians"]),
    ("times decreasing", lambda: mpsync.evolve(S3, [1.0, 0.0]), InvalidSystemError, ["times"]),
    ("initial unknown", lambda: mpsync.evolve(S3, [0.0, 1.0], initial="sideways"), InvalidSystemError,
     ["initial"]),
    ("evolve unknown option", lambda: mpsync.evolve(S3, [0.0, 1.0], method="cumulant", t_max=2.0),
     InvalidOptionError, ["t_max"]),
    ("builder model", lambda: __import__("mpsync.builder").builder.build_system("ring", n=3, W=1.0),
     InvalidSystemError, ["ring"]),
    ("load garbage", lambda: mpsync.SteadyState.load(__file__), MpsyncError, ["not an mpsync"]),
]


@pytest.mark.parametrize("name, call, exc, must", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(name, call, exc, must):
    with pytest.raises(exc) as info:
        call()
    assert isinstance(info.value, MpsyncError)
    msg = str(info.value)
    assert "\n" not in msg.strip()
    for frag in must:
        assert frag in msg, msg


@pytest.mark.parametrize("a, b", [(0, 0), (0, 9), (-1, 2), (1.5, 0)])
def test_pair_density_matrix_bad_sites(a, b):
    ss = mpsync.steady_state(mpsync.DipoleSystem.chain(6, 0.1, "magic", W=2.0), method="cumulant")
    with pytest.raises(InvalidSiteError) as info:
        ss.pair_density_matrix(a, b)
    assert isinstance(info.value, MpsyncError) and "\n" not in str(info.value)


def test_sweep_api_checks_before_work(tmp_path):
    base = dict(model="all_to_all", n=3, f_eff=1.0, W=1.0)
    with pytest.raises(MpsyncError, match="workers"):
        mpsync.sweep(base, {"W": [1.0]}, workers=0, progress=False)
    with pytest.raises(InvalidOptionError, match="max_bond"):
        mpsync.sweep(base, {"W": [1.0]}, solver_options={"max_bond": 8}, progress=False,
                     cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError):
        mpsync.sweep(base, {"W": [1.0]}, cache_dir=tmp_path / "f" / "c", progress=False)


def test_both_model_spellings_and_seed_names():
    from mpsync.builder import build_system

    a = build_system("all-to-all", n=4, f_eff=2.0, W=1.0)
    b = build_system("all_to_all", n=4, f_eff=2.0, W=1.0)
    np.testing.assert_array_equal(a.f, b.f)
    c = build_system("chain", n=4, spacing=0.1, W=1.0, delta_spread=1.0, delta_seed=3)
    d = build_system("chain", n=4, spacing=0.1, W=1.0, delta_spread=1.0, seed=3)
    np.testing.assert_array_equal(c.delta, d.delta)
    from mpsync.sweeps import build_system as sweep_build

    e = sweep_build(dict(model="chain", n=4, spacing=0.1, W=1.0), delta_spread=1.0, delta_seed=3)
    np.testing.assert_array_equal(c.delta, e.delta)


def test_cli_and_sweep_build_the_same_system(capsys):
    import json

    from mpsync.builder import build_system

    code, out, err, _ = _cli(capsys, ["steady", "--model", "chain", "--n", "3", "--spacing", "0.2",
                                      "--W", "2", "--delta-spread", "1", "--delta-seed", "5", "--json"])
    assert code == 0, err
    via_seed = _cli(capsys, ["steady", "--model", "chain", "--n", "3", "--spacing", "0.2", "--W", "2",
                             "--delta-spread", "1", "--seed", "5", "--json"])[1]
    s = build_system("chain", n=3, spacing=0.2, W=2.0, delta_spread=1.0, delta_seed=5)
    ss = mpsync.steady_state(s, method="exact")
    assert json.loads(out)["ZQ2"] == pytest.approx(float(ss.ZQ2), abs=1e-12)
    assert json.loads(via_seed)["ZQ2"] == json.loads(out)["ZQ2"]


def test_count():
    assert len(CLI_CASES) + len(SPEC_CASES) + len(API_CASES) + 4 + 1 >= 40
