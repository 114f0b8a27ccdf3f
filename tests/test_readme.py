"""Every command and code block of the README runs as written (shrunk where it must be),
and every CLI flag has a help line with its default: the README cannot drift."""

import re
import shutil
from pathlib import Path

import pytest

from mpsync.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

#: README token sequences replaced to keep the default test run fast (same code paths)
SHRINK = [
    (["--shape", "30x30"], ["--shape", "4x4"]),
    (["--n", "16", "--spacing", "0.1", "--W", "2", "--method", "mpo", "--max-bond", "16"],
     ["--n", "4", "--spacing", "0.1", "--W", "2", "--method", "mpo", "--max-bond", "4"]),
    (["--n", "8", "--spacing"], ["--n", "4", "--spacing"]),
]
#: commands run only with -m slow (minutes); the default run checks that they parse
SLOW = ("validate", "figure")


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands():
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                if part.startswith("mpsync "):
                    out.append(part.split()[1:])
    return out


COMMANDS = _commands()


def _shrink(argv):
    argv = list(argv)
    for old, new in SHRINK:
        for i in range(len(argv) - len(old) + 1):
            if argv[i:i + len(old)] == old:
                argv[i:i + len(old)] = new
    return argv


def test_readme_has_commands():
    names = {c[0] for c in COMMANDS}
    assert {"demo", "steady", "evolve", "sweep", "figure", "validate"} <= names


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A copy of the example spec in a scratch folder, shrunk to a few tiny points."""
    (tmp_path / "examples").mkdir()
    spec = (ROOT / "examples" / "sweep_spec.toml").read_text()
    spec = re.sub(r"(?m)^n = \d+", "n = 3", spec)
    spec = re.sub(r"(?m)^W = \{.*\}", "W = {start = 0.5, stop = 8.0, num = 2}", spec)
    spec = re.sub(r"(?m)^spacing = \[.*\]", "spacing = [0.1]", spec)
    spec = re.sub(r"(?m)^workers = \d+", "workers = 1", spec)
    (tmp_path / "examples" / "sweep_spec.toml").write_text(spec)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_command(argv, capsys, workdir):
    argv = _shrink(argv)
    if argv[0] == "demo":
        argv = argv + ["--quick", "--out", str(workdir)]
    if argv[0] == "figure":
        argv = argv + ["--out", str(workdir)]
    if argv[0] == "validate":
        argv = argv + ["--out", str(workdir / "agreement.md")]
    if argv[0] == "sweep":
        argv = argv + ["--no-progress"]
    cluster = None
    if "--scheduler" in argv:
        distributed = pytest.importorskip("dask.distributed")
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                           dashboard_address=None)
        argv[argv.index("--scheduler") + 1] = cluster.scheduler_address
    try:
        code = main(argv)
    finally:
        if cluster is not None:
            cluster.close()
    out, err = capsys.readouterr()
    assert code == 0, f"mpsync {' '.join(argv)}: {err}"
    return out, err


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] not in SLOW],
                         ids=lambda a: " ".join(a)[:70])
def test_readme_command_runs(argv, capsys, workdir):
    out, err = _run_command(argv, capsys, workdir)
    if "--json" in argv:
        import json

        data = json.loads(out)
        fields = {"steady": ("method", "N", "ZQ", "ZQ2", "sz", "seconds", "diagnostics"),
                  "evolve": ("method", "N", "times", "ZQ2", "sz_mean", "seconds", "diagnostics"),
                  "two-time": ("method", "N", "taus", "pairs", "Z", "J", "fits", "seconds", "diagnostics")}
        for key in fields[argv[0]]:
            assert key in data, key
        if argv[0] == "two-time":
            listed = README.split("`mpsync two-time` prints")[1].split("`--json` gives")[1].split("`--save`")[0]
        else:
            listed = README.split(f"`mpsync {argv[0]} --json` prints")[1].split(";")[0]
        for key in re.findall(r"`(\w+)`", listed):
            if key == "errors" and argv[0] == "two-time":
                continue  # only approximate methods have errors (the README says so)
            assert key in data, f"the README lists {key!r}, which {argv[0]} --json does not print"


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] in SLOW], ids=lambda a: " ".join(a)[:70])
def test_readme_slow_command_parses(argv):
    build_parser().parse_args(argv)


@pytest.mark.slow
@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] in SLOW], ids=lambda a: " ".join(a)[:70])
def test_readme_slow_command_runs(argv, capsys, workdir):
    _run_command(argv, capsys, workdir)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_block_runs(index, workdir):
    code = _blocks("python")[index]
    code = code.replace("mpsync.DipoleSystem.chain(8,", "mpsync.DipoleSystem.chain(4,")
    code = code.replace("mpsync.DipoleSystem.chain(50,", "mpsync.DipoleSystem.chain(6,")
    exec(compile(code, f"README.md python block {index}", "exec"), {})
    shutil.rmtree(workdir / "my-sweep-cache", ignore_errors=True)


def _actions(parser):
    for action in parser._actions:
        if action.dest == "help":
            continue
        if hasattr(action, "choices") and isinstance(action.choices, dict):  # sub-commands
            for sub in action.choices.values():
                yield from ((f"{sub.prog} {a.option_strings or a.dest}", a) for a in sub._actions
                            if a.dest != "help")
            continue
        yield str(action.option_strings), action


def test_every_flag_has_help_with_default():
    for name, action in _actions(build_parser()):
        if action.dest == "command":
            continue
        assert action.help, f"{name} has no help line"
        if action.option_strings:
            assert "default" in action.help or "required" in action.help, f"{name}: {action.help!r}"
