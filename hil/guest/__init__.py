"""Guests other than the probe that run as dom0: Linux with its FF-A driver."""
