"""Build real firmware images for the QEMU tier: test SPMC, probe guest, TF-A, bundles."""
