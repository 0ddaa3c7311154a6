"""Review mode: what a Xen change does to FF-A behaviour, scenario by scenario.

``hil diff`` boots the same scenarios with the same firmware on a base Xen and a head Xen (or
against a recording, :mod:`hil.diff.recording`) and compares, per scenario, Xen's FF-A lines and
the dom0 probe's answers after removing boot-to-boot noise. One concept per module:

- :mod:`hil.diff.patches`   patch files (format-patch, mbox, plain diff) split and applied
- :mod:`hil.diff.inputs`    a ``--base``/``--head`` argument resolved to a board variant
- :mod:`hil.diff.normalise` the noise rules (timestamps, addresses, RAM placement, build dates)
- :mod:`hil.diff.behaviour` what one boot showed, as the lines a diff compares
- :mod:`hil.diff.compare`   base vs head per scenario, and the exit code
- :mod:`hil.diff.output`    terminal summary, ``diff.json``, ``diff.html``
- :mod:`hil.diff.recording` golden files: ``hil run --record`` and ``expect = "recorded:DIR"``
"""
