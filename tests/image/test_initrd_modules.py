"""The initramfs module list: named modules plus their dependencies, dependencies first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("initrd_modules", ROOT / "image/appliance/initrd_modules.py")
assert spec is not None and spec.loader is not None
mods = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mods)

DEP = """kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko kernel/drivers/usb/core/usbcore.ko \
kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/common/usb-common.ko:
"""


@pytest.fixture
def moddir(tmp_path: Path) -> Path:
    (tmp_path / "modules.dep").write_text(DEP)
    (tmp_path / "modules.builtin").write_text("kernel/fs/squashfs/squashfs.ko\n")
    return tmp_path


def test_dependencies_first_each_once(moddir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mods.main([str(moddir), "uas", "usb_storage", "ext4", "squashfs"]) == 0
    order = capsys.readouterr().out.split()
    assert len(order) == len(set(order)) == 8
    pos = {p.rsplit("/", 1)[1]: i for i, p in enumerate(order)}
    assert pos["usb-common.ko"] < pos["usbcore.ko"] < pos["usb-storage.ko"] < pos["uas.ko"]
    assert max(pos["crc16.ko"], pos["mbcache.ko"], pos["jbd2.ko"]) < pos["ext4.ko"]
    assert "squashfs.ko" not in pos  # built into the kernel: nothing to load


def test_unknown_module_is_an_error(moddir: Path) -> None:
    with pytest.raises(SystemExit, match="no module 'nope'"):
        mods.main([str(moddir), "nope"])
