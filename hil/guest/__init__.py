"""Guests other than the probe that run as dom0: Linux with its FF-A driver.

A board boots one guest as dom0 (``guest`` in lab.toml): the probe, hil's own client that asks
every question a scenario's plan holds, or Linux, the client that matters in the field."""

PROBE = "probe"
LINUX = "linux"
GUESTS = (PROBE, LINUX)
