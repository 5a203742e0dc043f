"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _full_fp32_on_cuda():
    """CPU/CUDA parity is about float32: keep cuDNN/cuBLAS off TF32 (on by default for cuDNN)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on a loaded 2-core machine.
    Test modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
