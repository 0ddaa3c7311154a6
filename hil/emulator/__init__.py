"""Emulated boards: processes that boot real firmware images (QEMU today)."""
