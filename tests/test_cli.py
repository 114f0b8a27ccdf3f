"""The mpsync command: JSON output, one-line errors with exit code 2."""

import json

import numpy as np
import pytest

from mpsync.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_steady_json_round_trips(capsys):
    code, out, err = run(capsys, "steady", "--model", "chain", "--n", "4", "--spacing", "0.1",
                         "--theta", "magic", "--W", "2", "--method", "exact", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key in ("method", "N", "ZQ", "ZQ2", "sz", "seconds", "diagnostics"):
        assert key in data
    assert data["N"] == 4 and len(data["sz"]) == 4
    assert data["ZQ"] == pytest.approx(np.sqrt(max(data["ZQ2"], 0)))
    # the same numbers through the Python API
    import mpsync

    ss = mpsync.steady_state(mpsync.DipoleSystem.chain(4, 0.1, "magic", 2.0), method="exact")
    assert data["ZQ2"] == pytest.approx(float(ss.ZQ2), abs=1e-12)
    assert json.loads(json.dumps(data)) == data


def test_detuning_options_are_reproducible(capsys):
    args = ("steady", "--model", "chain", "--n", "3", "--spacing", "0.2", "--W", "2",
            "--delta-spread", "1.0", "--seed", "7", "--json")
    a = json.loads(run(capsys, *args)[1])
    b = json.loads(run(capsys, *args)[1])
    assert a["sz"] == b["sz"]
    c = json.loads(run(capsys, *args[:-3], "--seed", "8", "--json")[1])
    assert c["sz"] != a["sz"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["steady", "--model", "chain", "--n", "3", "--W", "2"], "--spacing"),
        (["steady", "--model", "chain", "--n", "3", "--spacing", "-0.1", "--W", "2"], "spacing"),
        (["steady", "--model", "chain", "--n", "3", "--spacing", "0.1", "--W", "-1"], "pump"),
        (["steady", "--model", "all-to-all", "--n", "3", "--W", "1"], "--f-eff"),
        (["steady", "--model", "all-to-all", "--n", "4", "--f-eff", "12", "--W", "1"], "eigenvalue"),
        (["steady", "--model", "chain", "--n", "3", "--spacing", "0.1", "--W", "2", "--method", "magic"],
         "unknown method"),
        (["steady", "--model", "chain", "--n", "3", "--spacing", "0.1", "--W", "2", "--delta", "1,2"],
         "detunings"),
        (["steady", "--model", "power-law", "--n", "3", "--W", "2"], "--alpha"),
        (["steady", "--model", "chain", "--n", "3", "--spacing", "0.1", "--W", "2", "--bogus"],
         "unrecognized"),
        (["steady", "--model", "chain", "--n", "30", "--spacing", "0.1", "--W", "2", "--method", "exact"],
         "mpo"),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_figure_threads_pins_blas_for_the_run(capsys, monkeypatch, tmp_path):
    """``mpsync figure --threads 1``: the figure runs with one BLAS thread (two runs sharing
    ``--out`` on 2 cores must not oversubscribe), and the limit is lifted afterwards."""
    from threadpoolctl import threadpool_info

    from mpsync.paper import figures

    seen = {}

    def fake(name, quick, out_dir):
        seen["threads"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        return {"checks": [("ok", True, "")]}

    monkeypatch.setattr(figures, "run_figure", fake)
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    code, _, err = run(capsys, "figure", "2e", "--threads", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert seen["threads"] and set(seen["threads"]) == {1}
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
    code, _, err = run(capsys, "figure", "2e", "--threads", "0", "--out", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
