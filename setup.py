"""Build autobert (pure Python, python/autobert) and autobert_ext._C (C++ always, CUDA when possible).

CUDA sources (csrc/**/*.cu) are compiled only when torch was built with CUDA and nvcc is
found; AUTOBERT_CUDA=0/1 forces the choice. Install with
``pip install --no-build-isolation -e .`` so the build uses the torch already installed.
"""
import glob
import json
import os
import shutil
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _want_cuda(torch):
    forced = os.environ.get("AUTOBERT_CUDA")
    if forced is not None and forced not in ("0", "1"):
        sys.exit(f"AUTOBERT_CUDA must be 0 or 1, got {forced!r}")
    if forced == "0":
        return False, "AUTOBERT_CUDA=0"
    if torch.version.cuda is None:
        reason = f"torch {torch.__version__} was built without CUDA"
    elif shutil.which("nvcc") is None and not os.environ.get("CUDA_HOME"):
        reason = "nvcc not found (set CUDA_HOME or add nvcc to PATH)"
    else:
        return True, f"torch CUDA {torch.version.cuda}"
    if forced == "1":
        sys.exit(f"AUTOBERT_CUDA=1 but CUDA cannot be built: {reason}")
    return False, reason


def _extensions():
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        print("autobert: torch not importable at build time; skipping autobert_ext._C "
              "(install torch first and build with --no-build-isolation)")
        return [], {}
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))
    use_cuda, reason = _want_cuda(torch)
    # Built from source on the machine that runs it, so tune for it; AUTOBERT_MARCH overrides (e.g. x86-64-v3).
    cxx = ["-O3", "-std=c++20", "-fopenmp", f"-march={os.environ.get('AUTOBERT_MARCH', 'native')}"]
    define = [("AUTOBERT_WITH_CUDA", "1")] if use_cuda else []
    if use_cuda:
        print(f"autobert: building CUDA kernels ({reason})")
        nvcc = ["-O3", "-std=c++20", "--use_fast_math", "-lineinfo",
                "-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"]
        ext = cpp_extension.CUDAExtension(
            "autobert_ext._C", cpp + cu, include_dirs=[os.path.join(HERE, "csrc")], define_macros=define,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=["-fopenmp"])
    else:
        print(f"autobert: skipping CUDA kernels: {reason}; building the C++ CPU kernels only")
        ext = cpp_extension.CppExtension(
            "autobert_ext._C", cpp, include_dirs=[os.path.join(HERE, "csrc")],
            extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"])
    return [ext], {"build_ext": _recording_build_ext(cpp_extension.BuildExtension, torch, use_cuda)}


def _recording_build_ext(base, torch, use_cuda):
    """build_ext that writes autobert_ext/_build.json beside _C: the torch it was built against.
    autobert_ext._loader compares it with the running torch before loading _C, so a different
    torch gets a clear message and the eager fallback instead of an undefined-symbol crash."""

    class RecordingBuildExt(base.with_options(use_ninja=True)):
        def run(self):
            super().run()
            path = os.path.join(os.path.dirname(self.get_ext_fullpath("autobert_ext._C")), "_build.json")
            with open(path, "w") as f:
                json.dump({"torch": torch.__version__, "torch_cuda": torch.version.cuda, "with_cuda": use_cuda,
                           "python": sys.version.split()[0]}, f)

    return RecordingBuildExt


ext_modules, cmdclass = _extensions()
setup(
    packages=find_packages("python") + ["autobert_ext", "autobert_ext.triton"],
    package_dir={"": "python", "autobert_ext": "autobert_ext", "autobert_ext.triton": "autobert_ext/triton"},
    # Package data is declared here because pyproject sets include-package-data = false: the embedded
    # corpus and vocabulary (autobert.data) and the torch version _C was built against.
    package_data={"autobert.data": ["*.txt", "NOTICE.md"], "autobert_ext": ["_build.json"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
