"""The README as a new user meets it: an empty home and no data folder, ``nas-gym download all``
from a loopback mirror, then every Python snippet run as written, each in a fresh interpreter.
Every ``nas-gym`` command line in it must parse, and every ``make`` target must exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from nas_gym.experiments.cli import build_parser
from tests.helpers.mirror import PROXY_VARIABLES, link_mirror, serve

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DATA_FILES = [
    *(f"cifar10/cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
    "cifar10/cifar-10-batches-py/test_batch",
    "cifar10/cifar-10-batches-py/batches.meta",
    "nasbench201/nasbench201_all15625.csv",
    "nasbenchmacro/nas-bench-macro_cifar10.json",
]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def commands(prefix: str) -> list[str]:
    """The ``prefix ...`` lines of the README's bash blocks, continuation lines joined, comments cut."""
    lines = []
    for block in code_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith(prefix + " "):
                lines.append(line)
    return lines


PYTHON_BLOCKS = code_blocks("python")


def test_the_readme_has_the_snippets_this_file_runs() -> None:
    # A README without code blocks would make every test below vacuous.
    assert len(PYTHON_BLOCKS) >= 7 and len(commands("nas-gym")) >= 6


@pytest.fixture(scope="module")
def new_user(data_dir: Path, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """An empty home whose data comes from ``nas-gym download all`` through a loopback mirror, and
    the environment of a shell where ``.venv`` is active (its ``bin`` first on PATH)."""
    root = tmp_path_factory.mktemp("new_user")
    home, mirror, work = root / "home", root / "mirror", root / "work"
    home.mkdir()
    work.mkdir()
    link_mirror(data_dir, mirror, DATA_FILES)
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES and not k.startswith("NAS_GYM")}
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.defpath]),
        no_proxy="127.0.0.1",
        MPLBACKEND="Agg",
    )
    env.pop("XDG_CACHE_HOME", None)
    with serve(mirror) as server:
        fetched = subprocess.run(
            ["nas-gym", "download", "all"],
            env={**env, "NAS_GYM_MIRROR": server.url},
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )
    yield SimpleNamespace(env=env, work=work, home=home, fetched=fetched)


def test_download_all_fills_the_default_data_folder(new_user) -> None:
    assert new_user.fetched.returncode == 0, new_user.fetched.stderr
    data = new_user.home / ".cache" / "nas_gym"
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()) == sorted(
        DATA_FILES
    )


@pytest.mark.parametrize(
    "snippet",
    PYTHON_BLOCKS,
    ids=[f"{i}-{block.splitlines()[0][:30]}" for i, block in enumerate(PYTHON_BLOCKS)],
)
def test_every_python_snippet_runs_as_written(new_user, snippet: str, tmp_path: Path) -> None:
    assert new_user.fetched.returncode == 0, new_user.fetched.stderr
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    done = subprocess.run(
        [sys.executable, str(script)],
        env=new_user.env,
        cwd=new_user.work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{snippet}\n--- stderr ---\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    assert done.stdout.strip(), "every snippet prints what it made"


@pytest.mark.parametrize("line", commands("nas-gym"))
def test_every_command_line_parses(line: str) -> None:
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.func)


@pytest.mark.parametrize("line", commands("make"))
def test_every_make_target_exists(line: str) -> None:
    targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.M)
    assert shlex.split(line)[1] in targets
