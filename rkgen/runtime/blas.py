"""The BLAS behind the wide layers' large products: Intel's MKL where the process has it, else scipy's OpenBLAS
(runtime, inlined at render).

Every product of a wide block goes through :func:`rkgen.runtime.products._matmul`. Small ones call numba's helper
numba_xxgemm (scipy's OpenBLAS); products of at least LARGE_PRODUCT multiply-adds call the symbol
``rkgen_large_dgemm`` / ``rkgen_large_sgemm`` (BLAS's Fortran interface, 32-bit integers), which this module binds
once per process, before any kernel is linked:

- ``RKGEN_BLAS=auto`` (the default): MKL when the process has loaded it, that is PyTorch's (``torch`` imported
  before the module: its libtorch_cpu exports MKL's dgemm_ and sgemm_) or the ``mkl`` package's libmkl_rt
  (``pip install mkl``); else scipy's OpenBLAS, the library numba_xxgemm calls.
- ``RKGEN_BLAS=openblas``: scipy's OpenBLAS always. ``RKGEN_BLAS=mkl``: MKL (PyTorch's libtorch_cpu is loaded if
  torch is installed but not imported), or an ImportError.

The two libraries round differently, so a wide layer's results depend on the choice at the level of rounding
(:data:`BLAS_LIBRARY` names it); the gradient is the exact adjoint of the network computed, either way. Measured
side by side, one gradient of RK4 on an Intel Xeon (Emerald Rapids, AVX-512; MKL 2024.2 from torch 2.13 against
OpenBLAS 0.3.30): d = 256, 20 layers, 512 samples 0.81x the time with MKL on one thread, 0.84x on two, 0.86x in
float32; d = 64, 100 layers, 1500 samples 0.90x; but d = 16 (products of 16 x 16 x 128, 33k multiply-adds) 1.09x
and 004's batches of 5 1.2x: OpenBLAS's small-matrix kernels are faster there, so small products stay with it.

Threads: the kernels ask the BLAS for one thread in the thread that calls it (``rkgen_blas_local_threads``: MKL's
MKL_Set_Num_Threads_Local, OpenBLAS's openblas_set_num_threads_local) and give the previous count back at the end
of each pass; the driver runs one block per numba thread already.
"""

import ctypes
import importlib
import importlib.util
import os
import re
import sys

import llvmlite.binding as llvm
from numba import types

LARGE_PRODUCT = 1 << 18  # multiply-adds (m n k) from which a product calls the large-product symbols

# void gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): Fortran BLAS, every argument a pointer
_LARGE_DGEMM = types.ExternalFunction("rkgen_large_dgemm", types.void(*(types.voidptr,) * 13))
_LARGE_SGEMM = types.ExternalFunction("rkgen_large_sgemm", types.void(*(types.voidptr,) * 13))
_BLAS_LOCAL_THREADS = types.ExternalFunction("rkgen_blas_local_threads", types.intc(types.intc))


def _address(function) -> int:
    return ctypes.cast(function, ctypes.c_void_p).value


def _mkl_in(path, what):
    """(dgemm, sgemm, thread setter, description) of the MKL in the shared library ``path``, or None."""
    try:
        lib = ctypes.CDLL(path)
        functions = lib.dgemm_, lib.sgemm_, lib.MKL_Set_Num_Threads_Local, lib.MKL_Get_Version_String
    except (OSError, AttributeError):
        return None
    text = ctypes.create_string_buffer(256)
    functions[3](text, ctypes.c_int(len(text)))
    version = re.search(r"Version ([0-9.]+)", text.value.decode(errors="replace"))
    return (*(_address(f) for f in functions[:3]), f"MKL {version.group(1) if version else '?'} ({what})")


def _torch_library(load):
    """The path of PyTorch's libtorch_cpu when torch is imported (or, ``load``, merely installed), else None."""
    torch = sys.modules.get("torch")
    if torch is not None:
        folder = os.path.dirname(getattr(torch, "__file__", "") or "")
    elif load:
        spec = importlib.util.find_spec("torch")
        folder = os.path.dirname(spec.origin) if spec is not None and spec.origin else ""
    else:
        return None
    path = os.path.join(folder, "lib", "libtorch_cpu.so")
    return path if os.path.exists(path) else None


def _mkl(load):
    """MKL's (dgemm, sgemm, thread setter, description): PyTorch's, then the ``mkl`` package's; or None."""
    torch = _torch_library(load)
    found = _mkl_in(torch, "PyTorch's libtorch_cpu") if torch else None
    if found is None:
        rt = os.path.join(sys.prefix, "lib", "libmkl_rt.so.2")
        found = _mkl_in(rt, "libmkl_rt") if os.path.exists(rt) else None
    return found


def _capsule_address(capsule) -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get(capsule, name(capsule))


def _scipy_openblas_library():
    """scipy's own OpenBLAS (the wheels' scipy.libs/libscipy_openblas*.so), found without importing scipy, or
    None."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.origin:
        return None
    folder = os.path.join(os.path.dirname(os.path.dirname(spec.origin)), "scipy.libs")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
        if name.startswith("libscipy_openblas") and ".so" in name:
            try:
                return ctypes.CDLL(os.path.join(folder, name))
            except OSError:
                return None
    return None


def _openblas():
    """scipy's BLAS: (dgemm, sgemm, thread setter, description), or None without scipy. The wheels' OpenBLAS is
    opened directly (importing scipy.linalg.cython_blas takes a good part of a second); any other build through
    cython_blas's exported dgemm and sgemm. The thread setter is OpenBLAS's openblas_set_num_threads_local, or
    libc's abs, a call that changes nothing, where there is none."""
    libc = ctypes.CDLL(None)
    lib = _scipy_openblas_library()
    try:
        dgemm, sgemm = _address(lib.scipy_dgemm_), _address(lib.scipy_sgemm_)
    except AttributeError:
        lib = None
    if lib is None:
        try:
            capi = importlib.import_module("scipy.linalg.cython_blas").__pyx_capi__
        except ImportError:
            return None
        return _capsule_address(capi["dgemm"]), _capsule_address(capi["sgemm"]), _address(libc.abs), "scipy's BLAS"
    try:
        setter = _address(lib.openblas_set_num_threads_local)
    except AttributeError:
        setter = _address(libc.abs)
    name = "OpenBLAS (scipy's)"
    try:
        config = lib.scipy_openblas_get_config
        config.restype = ctypes.c_char_p
        version = re.search(r"OpenBLAS ([0-9.]+)", config().decode(errors="replace"))
        name = f"OpenBLAS {version.group(1)} (scipy's)" if version else name
    except AttributeError:
        pass
    return dgemm, sgemm, setter, name


# One binding per process, shared by every generated module (each inlines this module) and rkgen's runtime: the
# first stands, since kernels already linked keep its addresses.
_BOUND = sys.modules.setdefault("_rkgen_blas_binding", type(sys)("_rkgen_blas_binding"))


def _bind():
    """Binds the three symbols, once per process (a generated module binds them on import). Returns the library's
    description."""
    bound = getattr(_BOUND, "library", None)
    if bound is not None:
        return bound
    choice = os.environ.get("RKGEN_BLAS", "auto").strip().lower() or "auto"
    if choice not in ("auto", "mkl", "openblas"):
        raise ImportError(f"RKGEN_BLAS must be auto, mkl or openblas, got {choice!r}")
    found = _mkl(load=choice == "mkl") if choice != "openblas" else None
    if found is None and choice == "mkl":
        raise ImportError("RKGEN_BLAS=mkl, but no MKL was found: install torch or the mkl package, or unset it")
    if found is None:
        found = _openblas()
    if found is None:  # no scipy: wide layers raise ImportError before any kernel runs; the symbols stay unused
        abort = _address(ctypes.CDLL(None).abort)
        found = abort, abort, _address(ctypes.CDLL(None).abs), "none (install scipy for wide layers)"
    for symbol, address in zip(("rkgen_large_dgemm", "rkgen_large_sgemm", "rkgen_blas_local_threads"), found[:3],
                               strict=True):
        llvm.add_symbol(symbol, address)
    _BOUND.library = found[3]
    return found[3]


#: the library bound to the large-product symbols in this process, e.g. "MKL 2024.2 (PyTorch's libtorch_cpu)"
BLAS_LIBRARY = _bind()
