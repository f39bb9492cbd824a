"""The BLAS behind the wide layers' large products: Intel's MKL where the process has it, else scipy's OpenBLAS
(runtime, inlined at render).

Every product of a wide block goes through :func:`rkgen.runtime.products._matmul`. Small ones call numba's helper
numba_xxgemm (scipy's OpenBLAS); products of at least LARGE_PRODUCT multiply-adds call the symbol
``rkgen_large_dgemm`` / ``rkgen_large_sgemm`` (BLAS's Fortran interface, 32-bit integers), which this module binds
once per process, before any kernel is linked (kernels compile on their first call, never on import):

- ``RKGEN_BLAS=auto`` (the default), on Intel CPUs: MKL where the process can reach it without loading PyTorch,
  that is PyTorch's (``torch`` imported before the module: its libtorch_cpu exports MKL's dgemm_ and sgemm_) or
  the ``mkl`` package's libmkl_rt (``pip install mkl``, in this environment's lib/); else scipy's OpenBLAS, the
  library numba_xxgemm calls. Other CPUs take OpenBLAS (MKL was measured on Intel only).
- ``RKGEN_BLAS=openblas``: scipy's OpenBLAS always. ``RKGEN_BLAS=mkl``: MKL on any CPU (PyTorch's libtorch_cpu
  is loaded if torch is installed but not imported), or an ImportError.

So in ``auto`` the library depends on the process: a script that imports torch before its first rkgen module gets
MKL, ``rkgen train`` OpenBLAS. The two round differently, so a wide layer's results differ between them at the
level of rounding (:data:`BLAS_LIBRARY` names the one bound; MKL, without its conditional-reproducibility mode,
may also round differently for differently aligned arrays); the gradient is the exact adjoint of the network
computed, either way. Measured side by side, one gradient of RK4 on an Intel Xeon (Emerald Rapids, AVX-512; MKL
2024.2 from torch 2.13 against OpenBLAS 0.3.30): d = 256, 20 layers, 512 samples 0.90x the time with MKL on one
thread, 0.80x on two, 0.89x / 0.81x in float32; d = 64, 100 layers, 1500 samples 0.89x / 0.90x; d = 16 (products
of 16 x 16 x 128, 33k multiply-adds) 1.09x with MKL and 004's batches of 5 1.2x: OpenBLAS's small-matrix kernels
are faster there, so small products stay with it.

Threads: with MKL, the kernels set MKL's count of the calling thread to one while they run
(``rkgen_blas_local_threads``, MKL_Set_Num_Threads_Local: a thread-local count, so numba's worker threads and the
caller's thread each hold their own) and give the previous count back at the end of each pass (a pass that
raises, e.g. out of memory, leaves that thread's count at one). OpenBLAS's counts are process-wide (its
openblas_set_num_threads_local sets the global count too), so the kernels leave them alone (the symbol is bound to
libc's abs, a call that changes nothing) and the module's Python side holds OpenBLAS to one thread around a
parallel pass (:func:`rkgen.runtime.layout._single_blas`).
"""

import ctypes
import importlib
import importlib.util
import os
import re
import sys
from typing import NamedTuple

import llvmlite.binding as llvm
from numba import types

LARGE_PRODUCT = 1 << 18  # multiply-adds (m n k) from which a product calls the large-product symbols

_SYMBOLS = ("rkgen_large_dgemm", "rkgen_large_sgemm", "rkgen_blas_local_threads")
# void gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): Fortran BLAS, every argument a pointer
_GEMM = types.void(*(types.voidptr,) * 13)
_LARGE_DGEMM, _LARGE_SGEMM = (types.ExternalFunction(symbol, _GEMM) for symbol in _SYMBOLS[:2])
_BLAS_LOCAL_THREADS = types.ExternalFunction(_SYMBOLS[2], types.intc(types.intc))


class _Library(NamedTuple):
    """The addresses bound to _SYMBOLS, and what they are."""

    dgemm: int
    sgemm: int
    local_threads: int
    name: str


def _function_address(function) -> int:
    return ctypes.cast(function, ctypes.c_void_p).value


def _no_op():
    """libc's abs: an int(int) call that changes nothing, bound where the BLAS has no thread-local count."""
    return _function_address(ctypes.CDLL(None).abs)


def _mkl_in(path, what):
    """The MKL in the shared library ``path`` (its Fortran gemm with 32-bit integers), or None."""
    try:
        lib = ctypes.CDLL(path)
        dgemm, sgemm, local, version = lib.dgemm_, lib.sgemm_, lib.MKL_Set_Num_Threads_Local, lib.MKL_Get_Version_String
    except (OSError, AttributeError):
        return None
    text = ctypes.create_string_buffer(256)
    version(text, ctypes.c_int(len(text)))
    number = re.search(r"Version ([0-9.]+)", text.value.decode(errors="replace"))
    name = f"MKL {number.group(1) if number else '?'} ({what})"
    return _Library(_function_address(dgemm), _function_address(sgemm), _function_address(local), name)


def _torch_library(load):
    """The path of PyTorch's libtorch_cpu when torch is imported (or, ``load``, merely installed), else None."""
    torch = sys.modules.get("torch")
    if torch is not None:
        folder = os.path.dirname(getattr(torch, "__file__", None) or "")
    elif load:
        spec = importlib.util.find_spec("torch")
        folder = os.path.dirname(spec.origin) if spec is not None and spec.origin else ""
    else:
        return None
    path = os.path.join(folder, "lib", "libtorch_cpu.so")
    return path if folder and os.path.exists(path) else None


def _mkl(load):
    """MKL: PyTorch's, then the ``mkl`` package's libmkl_rt (unless told to use 64-bit integers,
    MKL_INTERFACE_LAYER=ILP64, which the bound calls cannot pass); or None."""
    torch = _torch_library(load)
    found = _mkl_in(torch, "PyTorch's libtorch_cpu") if torch else None
    rt = os.path.join(sys.prefix, "lib", "libmkl_rt.so.2")
    if found is None and os.path.exists(rt) and "ILP64" not in os.environ.get("MKL_INTERFACE_LAYER", "").upper():
        found = _mkl_in(rt, "libmkl_rt")
    return found


def _intel():
    """Whether the CPU is Intel's (Linux's /proc/cpuinfo; False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in info)
    except OSError:
        return False


def _capsule_address(capsule) -> int:
    api = ctypes.PyDLL(None)  # the interpreter's own C API, with prototypes of this module's own
    get, name = api.PyCapsule_GetPointer, api.PyCapsule_GetName
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get(capsule, name(capsule))


def _scipy_openblas():
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
    """scipy's BLAS, or None without scipy. The wheels' OpenBLAS is opened directly (importing
    scipy.linalg.cython_blas takes a good part of a second); any other build through cython_blas's dgemm and
    sgemm."""
    lib = _scipy_openblas()
    if lib is not None and hasattr(lib, "scipy_dgemm_") and hasattr(lib, "scipy_sgemm_"):
        name = "OpenBLAS (scipy's)"
        if hasattr(lib, "scipy_openblas_get_config"):
            config = lib.scipy_openblas_get_config
            config.restype = ctypes.c_char_p
            number = re.search(r"OpenBLAS ([0-9.]+)", config().decode(errors="replace"))
            name = f"OpenBLAS {number.group(1)} (scipy's)" if number else name
        return _Library(_function_address(lib.scipy_dgemm_), _function_address(lib.scipy_sgemm_), _no_op(), name)
    try:
        capi = importlib.import_module("scipy.linalg.cython_blas").__pyx_capi__
    except ImportError:
        return None
    return _Library(_capsule_address(capi["dgemm"]), _capsule_address(capi["sgemm"]), _no_op(), "scipy's BLAS")


# One binding per process, shared by every generated module (each inlines this module) and rkgen's runtime: the
# first stands, since kernels already linked keep its addresses. LLVM's symbol table says whether it is made; the
# description is kept beside it.
_BOUND = sys.modules.setdefault("_rkgen_blas_binding", type(sys)("_rkgen_blas_binding"))


def _bind():
    """Binds the three symbols, once per process (a generated module binds them on import). Returns the bound
    library's description."""
    if llvm.address_of_symbol(_SYMBOLS[0]):
        return getattr(_BOUND, "library", "bound before")
    choice = os.environ.get("RKGEN_BLAS", "auto").strip().lower() or "auto"
    if choice not in ("auto", "mkl", "openblas"):
        raise ImportError(f"RKGEN_BLAS must be auto, mkl or openblas, got {choice!r}")
    found = None
    if choice == "mkl" or (choice == "auto" and _intel()):
        found = _mkl(load=choice == "mkl")
    if found is None and choice == "mkl":
        raise ImportError("RKGEN_BLAS=mkl, but no MKL was found: install torch or the mkl package, or unset it")
    if found is None:
        found = _openblas()
    if found is None:  # no scipy: wide layers raise ImportError before any kernel runs; the symbols stay unused
        abort = _function_address(ctypes.CDLL(None).abort)
        found = _Library(abort, abort, _no_op(), "none (install scipy for wide layers)")
    for symbol, address in zip(_SYMBOLS, found[:3], strict=True):
        llvm.add_symbol(symbol, address)
    _BOUND.library = found.name
    return found.name


#: the library bound to the large-product symbols in this process, e.g. "MKL 2024.2 (PyTorch's libtorch_cpu)"
BLAS_LIBRARY = _bind()
