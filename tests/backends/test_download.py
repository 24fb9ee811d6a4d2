"""``nas-gym download``: mirror and direct mode over a loopback HTTP server, the checks that refuse
tampered files without leaving anything behind, the NAS-Bench-201 join and its unpickler."""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import re
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401
from nas_gym.backends import download as dl
from nas_gym.backends.cifar.data import DataNotFoundError, check_cifar10, clear_cache, load_cifar10
from nas_gym.backends.tables.macro import MACRO_FILE, load_macro_table
from nas_gym.backends.tables.nb201 import NB201_FILE, load_nb201_table
from nas_gym.backends.tables.nb201_join import SourceError, UnsafeFrameError, join_nb201, read_frame
from nas_gym.backends.tables.reader import TableNotFoundError, clear_table_cache
from nas_gym.experiments import cli
from tests.helpers.mirror import environment, link_mirror, serve

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
ALL_FILES = sorted(
    [f"cifar10/cifar-10-batches-py/{name}" for name in CIFAR_FILES]
    + [NB201_FILE.as_posix(), MACRO_FILE.as_posix()]
)


# ---------------------------------------------------------------------------- helpers
def listing(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, hidden ones included."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def tamper(source: Path, mirror: Path, relative: str) -> None:
    """A copy of ``source/<relative>`` in the mirror with one byte changed."""
    data = bytearray((source / relative).read_bytes())
    middle = len(data) // 2
    data[middle] = ord("7") if data[middle] != ord("7") else ord("3")
    target = mirror / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(data))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["download", *argv])
    return code, out.getvalue(), err.getvalue()


def one_line(text: str) -> str:
    """The message on stderr after the progress bars (each bar ends with ``\\r`` when it clears)."""
    lines = text.rsplit("\r", 1)[-1].strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------------- mirror mode, real data
@pytest.fixture(scope="module")
def downloaded(data_dir: Path, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """``nas-gym download all`` from a loopback mirror of the shared data into an empty folder."""
    root = tmp_path_factory.mktemp("download")
    mirror, target = root / "mirror", root / "data"
    link_mirror(data_dir, mirror, ALL_FILES)
    target.mkdir()
    with serve(mirror) as server, environment(NAS_GYM_DATA=str(target), NAS_GYM_MIRROR=server.url):
        code, out, err = run_cli("all")
        yield SimpleNamespace(target=target, server=server, code=code, out=out, err=err)


def test_download_all_from_a_mirror_feeds_the_envs(downloaded, data_dir: Path) -> None:
    target = downloaded.target
    assert downloaded.code == 0, downloaded.err
    assert files_under(target) == ALL_FILES and not [p for p in listing(target) if "/." in "/" + p]
    assert sorted(downloaded.server.requests) == sorted("/" + f for f in ALL_FILES)
    assert downloaded.out.count("downloaded: ") == len(ALL_FILES)

    env = gym.make("NASBench201-v0", data_dir=target)
    env.reset(seed=0)
    for action in [3, 3, 3, 1, 3, 2]:
        _, reward, terminated, _, info = env.step(action)
    assert terminated
    expected = load_nb201_table(data_dir)
    row = expected.row(info["arch"])
    assert reward == expected.columns["c10valid_valid_acc_12ep"][row] / 100

    macro = gym.make("NASBenchMacro-v0", data_dir=target)
    macro.reset(seed=0)
    for _ in range(8):
        _, reward, terminated, _, info = macro.step(2)
    assert terminated and info["arch"] == "22222222"
    assert load_macro_table(target).test_acc.tolist() == load_macro_table(data_dir).test_acc.tolist()

    images, labels = load_cifar10(target)
    assert images.shape == (50_000, 3, 32, 32) and labels.shape == (50_000,)
    shared_images, shared_labels = load_cifar10(data_dir)
    assert np.array_equal(images, shared_images) and np.array_equal(labels, shared_labels)
    assert load_cifar10(target, split="test")[0].shape == (10_000, 3, 32, 32)
    clear_cache()
    clear_table_cache()


def test_present_valid_files_are_skipped(downloaded) -> None:
    before = {f: (downloaded.target / f).stat().st_mtime_ns for f in ALL_FILES}
    requests = len(downloaded.server.requests)
    with environment(NAS_GYM_DATA=str(downloaded.target), NAS_GYM_MIRROR=downloaded.server.url):
        code, out, err = run_cli("macro", "all", "nb201")
    assert code == 0, err
    assert sorted(re.findall(r"skipped, already present and valid: (\S+)", out)) == ALL_FILES
    assert "downloaded" not in out and len(downloaded.server.requests) == requests
    assert {f: (downloaded.target / f).stat().st_mtime_ns for f in ALL_FILES} == before


@pytest.mark.parametrize("existing", [[], ["nasbenchmacro/notes.txt"]], ids=["empty", "folder-exists"])
def test_a_tampered_table_is_refused_and_nothing_is_left(
    data_dir: Path, tmp_path: Path, existing: list[str]
) -> None:
    mirror, target = tmp_path / "mirror", tmp_path / "data"
    tamper(data_dir, mirror, MACRO_FILE.as_posix())
    target.mkdir()
    for relative in existing:
        (target / relative).parent.mkdir(parents=True)
        (target / relative).write_text("not ours")
    before = listing(target)
    with serve(mirror) as server, environment(NAS_GYM_DATA=str(target), NAS_GYM_MIRROR=server.url):
        code, _, err = run_cli("macro")
    assert code == 2
    message = one_line(err)
    url = f"{server.url}/{MACRO_FILE.as_posix()}"
    assert re.fullmatch(
        rf"nas-gym: error: {re.escape(MACRO_FILE.as_posix())} from {re.escape(url)}: expected sha256 "
        rf"{dl.MACRO_SOURCE.sha256}, got [0-9a-f]{{64}}; refused, replace the mirror's copy .*NAS_GYM_MIRROR",
        message,
    ), message
    assert listing(target) == before


def test_a_tampered_cifar_file_leaves_no_staged_batches(cifar_dir: Path, tmp_path: Path) -> None:
    mirror, target = tmp_path / "mirror", tmp_path / "data"
    names = [f"cifar10/cifar-10-batches-py/{name}" for name in CIFAR_FILES]
    link_mirror(cifar_dir, mirror, names[:-1])
    tamper(cifar_dir, mirror, names[-1])  # the last one: the six batches before it are staged
    target.mkdir()
    with serve(mirror) as server, environment(NAS_GYM_DATA=str(target), NAS_GYM_MIRROR=server.url):
        code, _, err = run_cli("cifar10")
    assert code == 2 and len(server.requests) == len(names)
    assert re.search(
        r"batches\.meta from http://127\.0\.0\.1:\d+/\S+: expected sha256 \w+ \(the decoded copy\)", err
    )
    assert listing(target) == []


def test_a_pixel_changed_batch_is_refused(cifar_dir: Path, tmp_path: Path) -> None:
    # The batch still unpickles to a well-formed array: only its digest gives it away.
    relative = "cifar10/cifar-10-batches-py/data_batch_1"  # the first fetched
    target = tmp_path / "data"
    target.mkdir()
    tamper(cifar_dir, tmp_path / "mirror", relative)
    with (
        serve(tmp_path / "mirror") as server,
        pytest.raises(dl.DownloadError, match="md5 .* official release"),
    ):
        dl.download(["cifar10"], data_dir=target, mirror=server.url, progress=False)
    assert listing(target) == []


def test_a_missing_mirror_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    target = tmp_path / "data"
    with (
        serve(tmp_path / "mirror") as server,
        environment(NAS_GYM_DATA=str(target), NAS_GYM_MIRROR=server.url),
    ):
        code, _, err = run_cli("nb201")
    assert code == 2
    assert re.fullmatch(
        rf"nas-gym: error: {re.escape(NB201_FILE.as_posix())}: HTTP 404 File not found fetching "
        rf"{re.escape(server.url)}/\S+; check that the mirror holds .*",
        one_line(err),
    )
    assert not target.exists()


def test_network_errors_are_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with environment(NAS_GYM_DATA=str(tmp_path / "data"), NAS_GYM_MIRROR=f"http://127.0.0.1:{port}"):
        code, _, err = run_cli("macro")
    assert code == 2 and re.search(r"Connection refused.* fetching http://127\.0\.0\.1:\d+/", one_line(err))

    with socket.socket() as silent, environment():  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(dl.DownloadError, match=r"nasbenchmacro/\S+: .*timed out fetching http"):
            dl.download(["macro"], data_dir=tmp_path / "data", mirror=url, timeout=0.3, progress=False)
    assert not (tmp_path / "data").exists()


def test_a_present_invalid_file_is_refused_and_kept(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    (target / MACRO_FILE).parent.mkdir(parents=True)
    (target / MACRO_FILE).write_text("{}")
    with serve(tmp_path) as server, pytest.raises(dl.DownloadError, match=r"is present but fails its check"):
        dl.download(["macro"], data_dir=target, mirror=server.url, progress=False)
    assert (target / MACRO_FILE).read_text() == "{}" and server.requests == []


# ---------------------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            (),
            r"expected one or more of cifar10, nb201, macro, all, got none \(e\.g\. `nas-gym download all`\)",
        ),
        (("nb210",), r"expected one of cifar10, nb201, macro, all, got 'nb210'.*\(did you mean 'nb201'\?\)"),
    ],
)
def test_wrong_arguments(argv: tuple[str, ...], message: str) -> None:
    code, out, err = run_cli(*argv)
    assert code == 2 and out == "" and re.search(message, one_line(err))


def test_a_mirror_must_be_a_url(tmp_path: Path) -> None:
    with environment(NAS_GYM_DATA=str(tmp_path), NAS_GYM_MIRROR=str(tmp_path)):
        code, _, err = run_cli("macro")
    assert code == 2 and "expected NAS_GYM_MIRROR as an http://, https:// or file:// URL" in one_line(err)
    assert f"(for a folder: {tmp_path.as_uri()})" in err


def test_missing_data_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(TableNotFoundError, match="`nas-gym download nb201`"):
        gym.make("NASBench201-v0", data_dir=tmp_path)
    with pytest.raises(TableNotFoundError, match="`nas-gym download macro`"):
        gym.make("NASBenchMacro-v0", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="`nas-gym download cifar10`"):
        check_cifar10(tmp_path)


# ---------------------------------------------------------------------------- direct mode
@pytest.fixture
def github(tmp_path: Path, monkeypatch) -> Iterator[SimpleNamespace]:
    """raw.githubusercontent.com answered by a loopback server of ``tmp_path/github``."""
    folder = tmp_path / "github"
    folder.mkdir()
    real_urlopen = urllib.request.urlopen
    asked: list[str] = []
    with serve(folder) as server, environment():

        def urlopen(url: str, *args, **kwargs):
            asked.append(url)
            assert url.startswith("https://raw.githubusercontent.com/"), url
            return real_urlopen(url.replace("https://raw.githubusercontent.com", server.url), *args, **kwargs)

        monkeypatch.setattr(urllib.request, "urlopen", urlopen)
        monkeypatch.delenv("NAS_GYM_MIRROR", raising=False)
        yield SimpleNamespace(folder=folder, asked=asked)


def publish(github: SimpleNamespace, pin: dl.Pin, source: Path) -> None:
    target = github.folder / pin.repo / pin.commit / pin.path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def test_direct_macro_comes_from_the_pinned_commit(github, data_dir: Path, tmp_path: Path) -> None:
    publish(github, dl.MACRO_SOURCE, data_dir / MACRO_FILE)  # the shared copy is the upstream file
    placed = dl.download(["macro"], data_dir=tmp_path / "data", progress=False)
    assert placed == [tmp_path / "data" / MACRO_FILE]
    assert github.asked == [
        "https://raw.githubusercontent.com/xiusu/NAS-Bench-Macro/61a2bfc2ca0dce04d0997e6cf498047c27d6acf2/"
        "data/nas-bench-macro_cifar10.json"
    ]
    assert listing(tmp_path / "data") == ["nasbenchmacro", MACRO_FILE.as_posix()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin_synthetic_sources(github, monkeypatch, folder: Path) -> list[Path]:
    paths = write_sources(folder)
    pins = tuple(
        dl.Pin(f"owner/repo-{name}", "0" * 40, f"data/{path.name}", sha256(path))
        for name, path in zip("abc", paths)
    )
    for pin, path in zip(pins, paths):
        publish(github, pin, path)
    monkeypatch.setattr(dl, "NB201_SOURCES", pins)
    monkeypatch.setattr(dl, "NB201_SHA256", hashlib.sha256(EXPECTED_JOIN.encode()).hexdigest())
    return paths


def test_direct_nb201_fetches_checks_and_joins_the_sources(github, monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pin_synthetic_sources(github, monkeypatch, tmp_path / "sources")
    target = tmp_path / "data"
    dl.download(["nb201"], data_dir=target, progress=False)
    assert (target / NB201_FILE).read_text() == EXPECTED_JOIN
    assert github.asked == [pin.url for pin in dl.NB201_SOURCES]
    assert listing(target) == ["nasbench201", NB201_FILE.as_posix()]  # sources and temporaries gone


def test_direct_nb201_refuses_a_changed_source(github, monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pin_synthetic_sources(github, monkeypatch, tmp_path / "sources")
    pin_b = dl.NB201_SOURCES[1]
    changed = github.folder / pin_b.repo / pin_b.commit / pin_b.path
    changed.write_text(changed.read_text().replace("99.968", "99.969"))
    target = tmp_path / "data"
    with pytest.raises(dl.DownloadError, match=rf"{pin_b.path} from {re.escape(pin_b.url)}: expected sha256"):
        dl.download(["nb201"], data_dir=target, progress=False)
    assert not target.exists()


def test_direct_cifar10_goes_through_torchvision(cifar_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets.utils

    calls = []

    def fake_archive(url, download_root, filename=None, md5=None, **kwargs):  # extracts the shared copy
        calls.append((url, filename, md5))
        extracted = Path(download_root) / "cifar-10-batches-py"
        extracted.mkdir()
        for name in CIFAR_FILES:
            (extracted / name).symlink_to(cifar_dir / "cifar10" / "cifar-10-batches-py" / name)
        (Path(download_root) / filename).write_bytes(b"archive")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_archive)
    monkeypatch.delenv("NAS_GYM_MIRROR", raising=False)
    target = tmp_path / "data"
    dl.download(["cifar10"], data_dir=target, progress=False)
    from torchvision.datasets import CIFAR10

    assert calls == [(CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5)]
    assert files_under(target) == [f"cifar10/cifar-10-batches-py/{name}" for name in sorted(CIFAR_FILES)]
    assert listing(target) == ["cifar10", "cifar10/cifar-10-batches-py"] + files_under(target)

    def offline(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        dl.DownloadError, match=r"cifar10: torchvision could not fetch https://\S+ .*no network"
    ):
        dl.download(["cifar10"], data_dir=empty, progress=False)
    assert listing(empty) == []


# ---------------------------------------------------------------------------- the NB201 join
ARCHS = (
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
)
SOURCE_A = f"""CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString
10.0,1.0,0.8333333333333334,{ARCHS[0]},u0
94.37333333333333,73.51333333333334,47.31111111111111,{ARCHS[1]},u1
85.86333333333334,52.913333294677734,26.6333332739936,{ARCHS[2]},u0
"""
# Rows out of order, extra columns; 0.0030065 and 1.2859775 are values of the real source where
# round-half-to-even (the published table) and printing the float with %.6f disagree.
SOURCE_B = f"""index,sol,name,arch_str,train-loss,train-accuracy,train-per-time,train-all-time,valid-loss,valid-accuracy,valid-per-time,valid-all-time,test-loss,test-accuracy,test-per-time,test-all-time
2,1,infer.tiny,{ARCHS[2]},0.0030065,99.968,12.54080206,2508.160412,0.499933444,89.61999999,3.926681706,785.3363412,0.489731802,89.72,1.2859775,314.1345365
0,2,infer.tiny,{ARCHS[0]},2.302585,10.0,2.711,542.2,2.302585,9.712,1.756,351.2,2.302585,10.0,0.702,140.4
1,3,infer.tiny,{ARCHS[1]},0.319028123,88.91866666,7.221092999,1444.2186,0.565850776,81.98266666,2.548979237,509.7958474,0.576099647,81.52,1.019591695,203.918339
"""
SOURCE_C = {  # arch -> cifar10-test, cifar10-val, cifar100-test, cifar100-val, imagenet-test, imagenet-val
    1: (69.55, 63.364, 31.26, 31.84, 17.0, 18.466666666666665),
    2: (88.22, 82.834, 58.26, 57.8, 33.8, 35.43333333333333),
    0: (10.0, 9.712, 1.0, 1.0, 0.8333333333333334, 0.8333333333333334),
}
EXPECTED_JOIN = f"""arch_index,arch_str,op_1from0,op_2from0,op_2from1,op_3from0,op_3from1,op_3from2,iso_class,c10valid_train_acc_200ep,c10valid_valid_acc_200ep,c10valid_test_acc_200ep,c10valid_train_loss_200ep,c10valid_valid_loss_200ep,c10valid_test_loss_200ep,c10valid_train_time_per_epoch_s,c10valid_train_time_200ep_s,c10valid_valid_eval_time_s,c10valid_test_eval_time_s,c10_test_acc_200ep,c100_test_acc_200ep,in16_test_acc_200ep,c10valid_valid_acc_12ep,c10_test_acc_12ep,c100_valid_acc_12ep,c100_test_acc_12ep,in16_valid_acc_12ep,in16_test_acc_12ep
0,{ARCHS[0]},0,0,0,0,0,0,0,10.000000,9.712000,10.000000,2.302585,2.302585,2.302585,2.711000,542.200000,1.756000,0.702000,10.000000,1.000000,0.833333,9.712000,10.000000,1.000000,1.000000,0.833333,0.833333
1,{ARCHS[1]},1,2,3,4,0,1,1,88.918667,81.982667,81.520000,0.319028,0.565851,0.576100,7.221093,1444.218600,2.548979,1.019592,94.373333,73.513333,47.311111,63.364000,69.550000,31.840000,31.260000,18.466667,17.000000
2,{ARCHS[2]},3,3,3,3,3,3,0,99.968000,89.620000,89.720000,0.003006,0.499933,0.489732,12.540802,2508.160412,3.926682,1.285978,85.863333,52.913333,26.633333,82.834000,88.220000,57.800000,58.260000,35.433333,33.800000
"""


def write_sources(folder: Path, frame_rows: dict[int, tuple] = SOURCE_C, arch_c=ARCHS) -> list[Path]:
    """Sources A and B as CSV files and C as a pandas pickle of a DataFrame, in their real formats."""
    pandas = pytest.importorskip("pandas")
    folder.mkdir(parents=True, exist_ok=True)
    a, b, c = folder / "nats_bench.csv", folder / "cifar10_avg.csv", folder / "mini-bench-arch-cell-accs.pd"
    a.write_text(SOURCE_A)
    b.write_text(SOURCE_B)
    names = ["cifar10-test", "cifar10-val", "cifar100-test", "cifar100-val", "imagenet-test", "imagenet-val"]
    frame = pandas.DataFrame(
        [{"arch": i, "cellstr": arch_c[i], **dict(zip(names, values))} for i, values in frame_rows.items()]
    )
    frame.to_pickle(c)
    return [a, b, c]


def test_the_join_of_synthetic_sources(tmp_path: Path) -> None:
    assert join_nb201(*write_sources(tmp_path)).decode() == EXPECTED_JOIN


def test_the_join_header_is_the_published_one(data_dir: Path) -> None:
    with open(data_dir / NB201_FILE) as f:
        assert f.readline() == EXPECTED_JOIN.splitlines(keepends=True)[0]


def test_the_join_refuses_sources_that_disagree(tmp_path: Path) -> None:
    other = (ARCHS[0], ARCHS[2], ARCHS[1])
    with pytest.raises(SourceError, match=r"expected the same arch_str for arch_index 1 in all sources"):
        join_nb201(*write_sources(tmp_path / "swapped", arch_c=other))
    short = {k: v for k, v in SOURCE_C.items() if k != 2}
    with pytest.raises(SourceError, match=r"expected source C \(.*\) to have each arch_index 0\.\.2 once"):
        join_nb201(*write_sources(tmp_path / "short", frame_rows=short))


# ---------------------------------------------------------------------------- the unpickler of C
@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"cos\nsystem\n(S'touch {marker}'\ntR.", "os.system"),
        (b'cbuiltins\nexec\n(S\'open("{marker}", "w")\'\ntR.', "builtins.exec"),
        # A pandas module is no pass: only the listed classes are, by exact name.
        (b"cpandas\neval\n(S'1 + 1'\ntR.", "pandas.eval"),
    ],
)
def test_a_hostile_pickle_raises_and_runs_nothing(tmp_path: Path, payload: bytes, named: str) -> None:
    pytest.importorskip("pandas")
    marker = tmp_path / "marker"
    path = tmp_path / "hostile.pd"
    path.write_bytes(payload.replace(b"{marker}", str(marker).encode()))
    with pytest.raises(UnsafeFrameError, match=rf"got a reference to {re.escape(named)}; refusing"):
        read_frame(path)
    assert not marker.exists()


def test_a_pickle_that_is_not_a_frame_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    path = tmp_path / "array.pd"
    path.write_bytes(pickle.dumps(np.arange(3)))
    with pytest.raises(SourceError, match=r"to hold a pandas DataFrame, got ndarray"):
        read_frame(path)


def test_without_pandas_the_message_says_what_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=r"pip install pandas"):
        read_frame(tmp_path / "any.pd")
