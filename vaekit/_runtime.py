"""Thread and device helpers shared by training, the fitted model and the jobs."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def n_threads(n_jobs: int | None) -> int:
    """Threads for scikit-learn's ``n_jobs``: None = 1, negative = one per CPU core."""
    return 1 if n_jobs is None else (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)


@contextmanager
def torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Run torch CPU work on ``n_jobs`` threads and restore the previous setting.

    ``None`` means one thread: vaekit's networks are small, and on a few cores one
    thread per process is faster than several fighting over tiny matrices.
    """
    import torch

    n = n_threads(n_jobs)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` = CUDA when available, else CPU; anything else is passed to torch."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# Device nodes of the GPU drivers torch's "cuda" device runs on under Linux: NVIDIA,
# NVIDIA under WSL2, NVIDIA Jetson (Tegra), AMD ROCm.  Without any of them torch
# cannot see a GPU there.
_GPU_DRIVER_NODES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg",
                     "/dev/nvhost-ctrl", "/dev/nvmap", "/dev/kfd")


@functools.lru_cache(maxsize=1)
def cuda_possible() -> bool:
    """Whether torch may see a CUDA device, without importing torch where it cannot.

    The answer is the same whatever has been imported before (so a model picks the
    same backend in any process), and asked once per process: on Linux without any
    GPU driver node, no CUDA; otherwise (and on other systems) torch says.
    """
    if sys.platform.startswith("linux") and not any(os.path.exists(p)
                                                    for p in _GPU_DRIVER_NODES):
        return False
    try:
        import torch
    except ImportError:  # a scoring-only install without torch
        return False
    return bool(torch.cuda.is_available())


def device_available(device: str) -> bool:
    """False for a CUDA device on a machine without CUDA (a model saved on a GPU box)."""
    return not device.startswith("cuda") or cuda_possible()


def device_present(device: str) -> bool:
    """False for a CUDA device this machine lacks (a model saved on a bigger GPU box)."""
    if not device_available(device):
        return False
    index = device.partition(":")[2]
    if not (device.startswith("cuda") and index):
        return True
    import torch

    return int(index) < torch.cuda.device_count()


_CONTROLLER = None


@contextmanager
def blas_threads(n_jobs: int | None) -> Iterator[None]:
    """Run numpy's BLAS on ``n_jobs`` threads (None = 1) and restore the setting after.

    The numpy runtime's matrices are small: one BLAS thread per scoring worker beats
    several fighting over them, and parallelism comes from scoring chunks at once.
    """
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=n_threads(n_jobs), user_api="blas"):
        yield
