"""Where nas-gym finds its data and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "NAS_GYM_DATA"
DEFAULT_DATA_DIR = Path("~/.cache/nas_gym")
CACHE_ENV_VAR = "NAS_GYM_CACHE"
"""Environment variable naming the folder of computed caches (NB-201 costs)."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given, else ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym`` (expanded)."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` if given, else ``$NAS_GYM_CACHE``, else ``$XDG_CACHE_HOME/nas_gym``, else
    ``~/.cache/nas_gym`` (expanded)."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV_VAR) or (
            Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "nas_gym"
        )
    return Path(cache_dir).expanduser()
