"""Build babyfast: setuptools drives CMake for the C++ core (`babyfast._core`).

`kernels/`, `train/` and `eval/` are mapped into the `babyfast` namespace, so an install adds exactly one
top-level name to site-packages.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _tool(name: str, attr: str) -> str | None:
    """The pip-installed build tool (pinned in requirements.txt) when present, else the one on PATH."""
    try:
        module = __import__(name)
        path = Path(getattr(module, attr)) / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which(name)


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out = Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = ROOT / "build" / f"py{sys.version_info.major}{sys.version_info.minor}"
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = [
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out.parent}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        cmake = _tool("cmake", "CMAKE_BIN_DIR")
        ninja = _tool("ninja", "BIN_DIR")
        generator = "Ninja" if ninja else "Unix Makefiles"
        cache = build_dir / "CMakeCache.txt"
        if cache.exists() and f"CMAKE_GENERATOR:INTERNAL={generator}" not in cache.read_text():
            shutil.rmtree(build_dir)  # configured by another generator: start clean rather than fail
            build_dir.mkdir(parents=True)
        cfg += ["-G", generator] + ([f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else [])
        subprocess.check_call([cmake, "-S", str(ROOT), "-B", str(build_dir), *cfg])
        jobs = str(os.cpu_count() or 2)
        subprocess.check_call([cmake, "--build", str(build_dir), "-j", jobs, "--target", "_core", "core_tests"])


setup(
    name="babyfast",
    version="0.1.0",
    description="Pretrain video foundation models on infant egocentric video with one GPU",
    python_requires=">=3.10",
    packages=[
        "babyfast",
        "babyfast.store",
        "babyfast.synth",
        "babyfast.loader",
        "babyfast.kernels",
        "babyfast.train",
        "babyfast.train.models",
        "babyfast.train.objectives",
        "babyfast.eval",
        "babyfast.eval.adapters",
    ],
    package_dir={
        "babyfast": "babyfast",
        "babyfast.kernels": "kernels",
        "babyfast.train": "train",
        "babyfast.eval": "eval",
    },
    package_data={"babyfast": ["py.typed", "_core.pyi"]},
    ext_modules=[CMakeExtension("babyfast._core")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=["numpy", "zarr>=3.1", "numcodecs", "crc32c", "av", "tqdm", "PyYAML", "tensorboard",
                      "matplotlib", "scikit-learn"],
    extras_require={"gpu": ["nvidia-dali-cuda130", "triton"]},
    entry_points={
        "console_scripts": ["babyfast=babyfast.cli:main"],
        # plain zarr-python finds our chunk codec without importing babyfast first
        "zarr.codecs": ["babyfast.gop = babyfast.store.codec:GopCodec"],
    },
)
