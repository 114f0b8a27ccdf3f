"""Faults: interrupted sweeps and trajectory runs, damaged and mismatched checkpoints,
a run killed mid-checkpoint. Each test runs the ``mpsync`` command in a subprocess
on a tiny system (a few seconds each)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

psutil = pytest.importorskip("psutil")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CMD = [sys.executable, "-m", "mpsync"]


def _mpsync(*argv, cwd, timeout=120):
    return subprocess.run([*CMD, *argv], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _default_sigint():
    # A job started in the background by a non-interactive shell (`pytest ... &`, nohup)
    # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt: the child
    # would run to the end and exit 0. The tests send SIGINT as a terminal does, so the
    # child gets the default disposition back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*argv, cwd):
    return subprocess.Popen([*CMD, *argv], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _wait_for(predicate, proc, timeout=60.0, what="condition"):
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _assert_gone(procs, timeout=10.0):
    t0 = time.monotonic()
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    while alive and time.monotonic() - t0 < timeout:
        time.sleep(0.1)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"worker processes left behind: {[p.pid for p in alive]}"


def _one_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


SPEC = """[system]
model = "chain"
n = {n}
spacing = 0.1
theta = "magic"
W = 1.0

[grid]
W = {W}

[solver]
method = "exact"
solver = "iterative"

[run]
observables = ["ZQ", "ZQ2", "sz_mean"]
workers = 2
cache_dir = "{cache}"
out = "{out}"
"""


# The interrupted sweep has enough points that its two workers cannot finish the rest
# between the first cached point and the signal, even on an idle machine.
INTERRUPTED_W = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]


def _write_spec(tmp_path, name, cache, out, n=8, W=(0.5, 1.0, 2.0, 3.0)):
    p = tmp_path / f"{name}.toml"
    p.write_text(SPEC.format(cache=cache, out=out, n=n, W=list(W)))
    return p


@pytest.fixture(scope="module")
def reference_sweep(tmp_path_factory):
    """The uninterrupted sweep (computed once)."""
    from mpsync.sweeps import load_dataset

    d = tmp_path_factory.mktemp("ref")
    r = _mpsync("sweep", str(_write_spec(d, "f", "cache", "f.nc", W=INTERRUPTED_W)), "--no-progress", cwd=d)
    assert r.returncode == 0, r.stderr
    return load_dataset(d / "f.nc")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sweep_interrupted_leaves_no_process_and_reruns_identically(tmp_path, reference_sweep, sig, code):
    from mpsync.sweeps import load_dataset

    spec = _write_spec(tmp_path, "s", "cache", "s.nc", W=INTERRUPTED_W)
    proc = _start("sweep", str(spec), "--no-progress", cwd=tmp_path)
    cache = tmp_path / "cache"
    workers = []

    def one_point_done():
        workers.extend(p for p in _descendants(proc.pid) if p not in workers)
        return cache.exists() and any(cache.glob("*.json"))

    _wait_for(one_point_done, proc, what="the first finished point")
    workers.extend(p for p in _descendants(proc.pid) if p not in workers)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    line = _one_line(err)
    assert "cache" in line
    _assert_gone(workers)
    finished = len(list(cache.glob("*.json")))
    assert finished >= 1
    assert not list(cache.glob("*.tmp*")), "no half-written cache file"
    assert not (tmp_path / "s.nc").exists()

    rerun = _mpsync("sweep", str(spec), "--no-progress", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    ds = load_dataset(tmp_path / "s.nc")
    assert ds.attrs["points_cached"] == finished
    ref = reference_sweep
    for name in ("ZQ", "ZQ2", "sz_mean"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values)


def test_trajectory_run_sigterm_stops_workers(tmp_path):
    proc = _start("steady", "--model", "chain", "--n", "6", "--spacing", "0.1", "--W", "2",
                  "--method", "trajectories", "--ntraj", "4000", "--workers", "2", "--seed", "1",
                  cwd=tmp_path)
    workers = []

    def started():
        workers.extend(p for p in _descendants(proc.pid) if p not in workers)
        return len(workers) >= 2

    _wait_for(started, proc, what="two worker processes")
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in _one_line(err)
    _assert_gone(workers)


# ---------------------------------------------------------------------- checkpoints
CHAIN = ["--model", "chain", "--n", "4", "--spacing", "0.2", "--W", "2", "--method", "mpo"]


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    r = _mpsync("steady", *CHAIN, "--max-bond", "16", "--checkpoint", "ck16.npz", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "ck16.npz"


@pytest.mark.parametrize("damage", ["empty", "truncated", "not-a-checkpoint", "garbage"])
def test_damaged_checkpoint_is_refused_with_one_line(tmp_path, good_checkpoint, damage):
    bad = tmp_path / "bad.npz"
    data = good_checkpoint.read_bytes()
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "not-a-checkpoint":
        np.savez(bad, x=np.arange(3))
    else:
        bad.write_bytes(os.urandom(2000))
    t0 = time.monotonic()
    r = _mpsync("steady", *CHAIN, "--max-bond", "16", "--resume", str(bad), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert "bad.npz" in line or "checkpoint" in line
    assert time.monotonic() - t0 < 30


def test_checkpoint_with_other_max_bond_or_system_is_refused(tmp_path, good_checkpoint):
    r = _mpsync("steady", *CHAIN, "--max-bond", "8", "--resume", str(good_checkpoint), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert "16" in line and "8" in line and ("max_bond" in line or "rung" in line), line
    other = [*CHAIN]
    other[other.index("--W") + 1] = "3"
    r = _mpsync("steady", *other, "--max-bond", "16", "--resume", str(good_checkpoint), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    _one_line(r.stderr)


def test_kill_mid_checkpoint_resumes_to_the_uninterrupted_answer(tmp_path):
    argv = ["steady", "--model", "chain", "--n", "6", "--spacing", "0.2", "--W", "2", "--method", "mpo",
            "--max-bond", "16", "--opt", "checkpoint_every=1", "--json"]
    ref = _mpsync(*argv, cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    ck = tmp_path / "ck.npz"
    proc = _start(*argv, "--checkpoint", str(ck), cwd=tmp_path)
    seen = []

    def rewritten():
        if ck.exists():
            m = ck.stat().st_mtime_ns
            if not seen or seen[-1] != m:
                seen.append(m)
        return len(seen) >= 3

    _wait_for(rewritten, proc, what="three checkpoint writes")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    res = _mpsync(*argv, "--resume", str(ck), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    a, b = json.loads(ref.stdout), json.loads(res.stdout)
    assert b["sz"] == a["sz"] and b["ZQ2"] == a["ZQ2"], "resumed run differs from the uninterrupted one"


def test_sweep_cache_survives_a_killed_worker_write(tmp_path):
    """A cache file is written atomically: a leftover temporary file is ignored on rerun."""
    spec = _write_spec(tmp_path, "s", "cache", "s.nc", n=5)
    r = _mpsync("sweep", str(spec), "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cache = tmp_path / "cache"
    files = sorted(cache.glob("*.json"))
    files[0].write_text(files[0].read_text()[:10])           # a damaged point is recomputed
    (cache / "deadbeef.tmp1234").write_text("{")              # a killed write's leftover
    r = _mpsync("sweep", str(spec), "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from mpsync.sweeps import load_dataset

    ds = load_dataset(tmp_path / "s.nc")
    assert ds.attrs["points_cached"] == 3 and ds.attrs["points_computed"] == 1


def test_results_round_trip(tmp_path):
    r = _mpsync("evolve", "--model", "chain", "--n", "3", "--spacing", "0.2", "--W", "2", "--t-max", "1",
                "--steps", "2", "--save", "ts.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import mpsync

    ts = mpsync.TimeSeries.load(tmp_path / "ts.npz")
    assert ts.times.tolist() == [0.0, 0.5, 1.0] and ts.system.n == 3
    assert Path(tmp_path / "ts.npz").exists()
