"""pytest fixtures for kernel-client tests: import them into a test module (``from tests.kvm.fixtures import
guest_image, sandbox``). The guest image is built once per test process, whichever modules use it.

Tests using them are marked ``appliance`` (they need ``make image``'s kernel) and skip with the reason when
the kernel, qemu, busybox or namespaces are missing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kvm.guest import GuestImage, Kernel, missing_tools
from tests.kvm.netns import Sandbox


@functools.cache
def _build(workdir: Path) -> GuestImage:
    kernel = Kernel.appliance()
    assert kernel is not None
    return GuestImage.build(workdir, kernel)


@pytest.fixture(scope="session")
def guest_image(tmp_path_factory: pytest.TempPathFactory) -> GuestImage:
    """The guest image (kernel + base initramfs), or a skip saying what is missing."""
    if Kernel.appliance() is None:
        pytest.skip("the appliance kernel is not built (make image: image/build/out/vmlinuz and the root fs)")
    missing = missing_tools()
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (make deps)")
    return _build(tmp_path_factory.getbasetemp() / "kvm-guest")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A private network + mount namespace (see netns.py), closed after the test."""
    reason = Sandbox.available()
    if reason:
        pytest.skip(reason)
    with Sandbox() as sb:
        yield sb
