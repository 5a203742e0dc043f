"""Every `metarl ...` command shape in the README parses with the real CLI, names presets, tasks and
config keys that exist, and runs on a tiny run with tiny budgets.

Commands come from the README's code blocks (synopses such as ``metarl train [CONFIG.yaml]
[--set key=value ...]``) and from inline code that gives arguments (``metarl train
ml1_reach``). Each synopsis is checked in two forms, without its optional ``[...]`` parts and with
all of them; its placeholders are filled from :data:`PLACEHOLDERS`, and a placeholder missing there
fails the test, so a new README command needs a value here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metarl import pretrained
from metarl.checkpoint import load_agent
from metarl.cli import build_parser, main
from metarl.config import DEFAULT_PRESET, load_config
from metarl.envs import tasks
from metarl.evaluate import evaluate_agent
from metarl.presets import resolve_config
from metarl.results import write_outputs

from _gl import skip_without_gl  # tests/metarl is on sys.path (pytest rootdir import mode)
from _tiny_runs import tiny_run

README = Path(__file__).resolve().parents[2] / "README.md"
# --set budgets appended to every `metarl train` that runs here: seconds, not minutes
TINY_TRAIN = ["env.num_envs=2", "env.episodes_per_trial=2", "env.max_episode_steps=10", "env.eval_num_envs=1",
              "env.workers=0", "total_steps=40", "progress=false", "tensorboard=false", "device=cpu",
              "agent.hidden_size=16"]
TINY = {  # flags appended to the other commands that run here
    "evaluate": ["--trials", "1", "--num-envs", "1", "--workers", "0", "--no-progress"],
    "record": ["--every", "15", "--size", "64", "--no-progress"],
    "plot": ["--no-trace"],
    "envs": [],
    "pretrained": [],
}


def readme_commands(text: str) -> list[str]:
    """`metarl ...` lines of the code blocks (fenced or indented), and inline code with arguments."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            found += [part.strip() for part in line.split("&&") if part.strip().startswith("metarl ")]
    found += [c for c in re.findall(r"`(metarl [^`]+)`", text) if len(c.split()) > 2]
    return list(dict.fromkeys(found))


def expand(synopsis: str) -> list[str]:
    """The synopsis without its ``[...]`` parts, and with all of them (repetition marks dropped)."""
    minimal = synopsis
    while re.search(r"\[[^\[\]]*\]", minimal):
        minimal = re.sub(r"\s*\[[^\[\]]*\]", "", minimal)
    full = re.sub(r"[\[\]]", "", synopsis).replace(" ...", "")
    return list(dict.fromkeys([" ".join(minimal.split()), " ".join(full.split())]))


def test_readme_has_the_command_shapes_this_test_knows() -> None:
    commands = readme_commands(README.read_text())
    subcommands = {c.split()[1] for c in commands}
    assert subcommands == {"train", "evaluate", "record", "plot", "envs", "pretrained"}, commands
    assert any("--resume" in c for c in commands) and any("agent.kind=sb3" in c for c in commands)


def test_expand_drops_or_keeps_optional_parts() -> None:
    assert expand("metarl train [CONFIG.yaml] [--set key=value ...] [--run-dir DIR]") == [
        "metarl train", "metarl train CONFIG.yaml --set key=value --run-dir DIR"]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Placeholder -> value; run directories are the tiny ML1/reach-v3 run (the default preset's benchmark)."""
    run = tiny_run(tmp_path_factory.getbasetemp(), "reach")
    out = tmp_path_factory.mktemp("readme")
    switching = out / "switch_eval.json"  # what `metarl evaluate RUN --task-switches 1 --out` writes, one trial
    write_outputs(evaluate_agent(load_agent(run), trials=1, num_envs=1, workers=0, task_switches=1), switching)
    return {
        "RUN_DIR": str(run), "RUN": str(run), "RUN_A": str(run), "RUN_B": str(run), "DIR": str(run),
        "CONFIG.yaml": str(README.parent / "configs" / "ml1_reach.yaml"), "key=value": "seed=3", "total_steps=...": "total_steps=480",
        "N": "2", "F": "8", "FILE.json": str(out / "eval.json"), "trial.mp4": str(out / "trial.mp4"),
        "plots/": str(out / "plots"), "BENCHMARK": "ML1/reach-v3", "OUT": str(out), "EVAL.json": str(switching),
        "NAME": "ml1-reach",
    }


def fill(command: str, places: dict[str, str]) -> list[str]:
    argv = []
    for word in shlex.split(command)[1:]:
        value = places.get(word, word)
        leftover = re.findall(r"\b[A-Z][A-Z_]{2,}\b|\.\.\.", value) if value == word else []
        assert not leftover, f"README command {command!r} has placeholder {word!r}: give it a value in this test"
        argv.append(value)
    return argv


def _shapes() -> list[str]:
    return [shape for c in readme_commands(README.read_text()) for shape in expand(c)]


@pytest.mark.parametrize("shape", _shapes())
def test_readme_command_parses_and_names_things_that_exist(shape: str, places: dict[str, str]) -> None:
    argv = fill(shape, places)
    args = build_parser().parse_args(argv)  # a flag the CLI lacks exits here
    if args.command == "train":
        if args.config is not None:
            resolve_config(args.config)  # a file or a preset
        path = None if args.config is None else resolve_config(args.config)[0]
        if args.resume is None:
            load_config(path, args.overrides, preset=None if path else DEFAULT_PRESET)  # keys and values valid
    if args.command == "record":
        # a shipped agent's examples name its own benchmark's tasks; the rest must run on the default run
        source = str(args.source)
        benchmark = (pretrained.card(source[len(pretrained.PREFIX):]).benchmark if pretrained.is_pretrained(source)
                     else DEFAULT_PRESET["env"]["benchmark"])
        assert args.task in tasks(benchmark, args.split), f"{shape}: {args.task} is not in {benchmark}"


@pytest.mark.parametrize("shape", _shapes())
def test_readme_command_runs_on_a_tiny_run(shape: str, places: dict[str, str], tmp_path: Path, capsys,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # outputs named relative to the working directory land here
    argv = fill(shape, places)
    command = argv[0]
    if command == "train":
        if "--resume" in argv:  # resume a copy, so the shared tiny run stays as it is
            copy = tmp_path / "resumed"
            shutil.copytree(argv[argv.index("--resume") + 1], copy)
            argv[argv.index("--resume") + 1] = str(copy)
            argv += ["--set", "progress=false"]
        else:
            argv += [x for s in TINY_TRAIN for x in ("--set", s)]
            if "--run-dir" in argv:  # a new run, not the tiny run DIR stands for elsewhere
                argv[argv.index("--run-dir") + 1] = str(tmp_path / "run")
            else:
                argv += ["--run-dir", str(tmp_path / "run")]
    else:
        argv += TINY[command] + (["--num-evals", "1"] if "--protocol" in argv else [])
    if command == "record":
        skip_without_gl()  # the GL backend is chosen before mujoco is imported: a fresh process
        proc = subprocess.run([sys.executable, "-m", "metarl", *argv], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "attempts solved" in proc.stdout
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0, capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)
