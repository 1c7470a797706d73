"""Fixtures shared by the agent tests."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One math thread for the test, restored after it. The agents' per-step ops use small
    matrices: on a busy shared machine a second OpenMP thread mostly waits (measured: the
    engine's 1,000-step test takes 0.2 s on one thread, 14 s on two). Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
