"""The package itself: cheap to import, layered, and its README layout matches the tree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_registers_the_envs_and_loads_nothing_heavy() -> None:
    code = (
        "import sys, json, gymnasium as gym, nas_gym\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'agents') "
        "or m.startswith(('nas_gym.evaluation', 'nas_gym.backends', 'nas_gym.envs', 'nas_gym.experiments')))\n"
        "print(json.dumps([heavy, 'NASCifar-v0' in gym.registry]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    heavy, registered = json.loads(out.stdout)
    assert heavy == [] and registered


def test_the_readme_layout_names_every_package() -> None:
    readme = (REPO / "README.md").read_text()
    packages = sorted(
        str(path.parent.relative_to(REPO)).replace("\\", "/")
        for path in (REPO / "nas_gym").rglob("__init__.py")
        if path.parent != REPO / "nas_gym"
    )
    missing = [p for p in packages if not re.search(rf"\b{re.escape(p.rsplit('/', 1)[-1])}/", readme)]
    assert missing == []
