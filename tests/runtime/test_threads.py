"""The thread count: the choice rule on given timings, and a real (small) measurement."""

import pytest

from lantern.runtime import threads


def test_more_threads_must_be_clearly_faster_to_be_chosen():
    assert threads.choose({1: 1.0, 2: 0.9}) == 1  # a narrow win goes to fewer threads
    assert threads.choose({1: 1.0, 2: 0.7}) == 2
    assert threads.choose({1: 1.0, 2: 0.5, 4: 0.45}) == 2
    assert threads.choose({1: 0.5, 2: 1.0}) == 1


def test_candidates_run_from_one_to_every_core_this_process_may_use():
    counts = threads.candidates()
    assert counts[0] == 1 and counts == sorted(set(counts))


def test_a_measurement_times_every_count_and_leaves_the_thread_count_as_it_was():
    import torch

    before = torch.get_num_threads()
    for native in (False, True):  # PyTorch's kernel; the native one where it builds
        timings = threads.measure([1, 2], rounds=1, megabytes=8, passes=1, native=native)
        assert set(timings) == {1, 2} and all(seconds > 0 for seconds in timings.values())
    assert torch.get_num_threads() == before
    assert threads.use_threads(1) == 1 and torch.get_num_threads() == 1
    torch.set_num_threads(before)


def test_only_a_bf16_cpu_model_times_with_the_native_kernel(monkeypatch):
    """A GPU or float32 run never asks for the native kernels (whose first build takes a minute)."""
    from lantern.runtime import kernels
    from lantern.runtime.loader import uses_native_kernels

    assert uses_native_kernels("cpu", "bfloat16") and not uses_native_kernels("cpu", "float32")
    monkeypatch.setattr(kernels, "native", lambda: pytest.fail("the native kernels were asked for"))
    threads.measure([1], rounds=1, megabytes=8, passes=1, native=False)
