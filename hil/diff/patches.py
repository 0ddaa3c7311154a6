"""Patch files for ``hil diff --head-patch``: ``git format-patch`` output, a mailing-list mbox
holding several patches, or a plain unified diff, each taken ``-p1`` from the Xen tree's root.

A file is split into its patches at mbox ``From `` separator lines (a cover letter without a
diff is skipped) and each is applied in order with ``git apply`` (argv lists, never a shell): it
reads all three forms, applies atomically per patch, and says which hunk failed. A patch that
does not apply is one PatchError line naming the file, the patch in it and the hunk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hil.config import display_path
from hil.errors import ConfigError, InfraError
from hil.terminal import neutralise

# An mbox message separator: format-patch writes "From <sha> Mon Sep 17 00:00:00 2001", list
# archives "From git@z Thu Jan  1 00:00:00 1970" or a real sender and date.
_SEPARATOR = re.compile(rb"^From \S+ +\w{3} \w{3} [ \d]?\d \d\d:\d\d:\d\d \d{4}\s*$", re.M)
_HAS_DIFF = re.compile(rb"^(?:diff --git |--- \S.*\n\+\+\+ \S)", re.M)
_SUBJECT = re.compile(rb"^Subject: (.*(?:\n[ \t].*)*)", re.M)
_FILE = re.compile(rb"^\+\+\+ (?:b/)?(\S+)", re.M)
_HUNK = re.compile(rb"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)
_FAILED_AT = re.compile(r"patch failed: (.+):(\d+)$")


class PatchError(ConfigError):
    """A patch file that cannot be read, holds no diff, or does not apply (exit 2)."""


@dataclass(frozen=True)
class Patch:
    """One patch of a file: its bytes (mail headers included, ``git apply`` skips them)."""

    file: Path
    number: int  # 1-based position in the file
    of: int  # how many patches the file holds
    subject: str | None
    text: bytes

    def where(self) -> str:
        """The patch as a person finds it: the file, and which of its patches when several."""
        name = display_path(self.file)
        if self.of == 1:
            return name
        subject = f": {self.subject}" if self.subject else ""
        return f"{name} (patch {self.number} of {self.of}{subject})"

    def hunk(self, path: str, old_start: int) -> str:
        """``path hunk #N (@@ ... @@)``: the hunk of ``path`` starting at ``old_start``."""
        for section in re.split(rb"(?m)^(?=diff --git |--- )", self.text):
            found = _FILE.search(section)
            if found is None or found[1].decode("utf-8", "replace") != path:
                continue
            for number, hunk in enumerate(_HUNK.finditer(section), 1):
                if int(hunk[1]) == old_start:
                    return f"{path} hunk #{number} ({hunk[0].decode('utf-8', 'replace')})"
        return f"{path} at line {old_start}"


def read_patches(path: Path) -> list[Patch]:
    """The patches in ``path``, in order (PatchError if unreadable or holding no diff)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PatchError(f"{display_path(path)}: cannot read: {exc.strerror}") from None
    starts = [m.start() for m in _SEPARATOR.finditer(data)] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    parts = [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]
    # Cover letters ("[PATCH 0/N]") and text before the first message carry no diff.
    with_diff = [p for p in parts if _HAS_DIFF.search(p)]
    if not with_diff:
        raise PatchError(f"{display_path(path)}: no diff in it (expected a unified diff)")
    return [
        Patch(path, i, len(with_diff), _subject(p), p) for i, p in enumerate(with_diff, start=1)
    ]


def _subject(part: bytes) -> str | None:
    found = _SUBJECT.search(part.split(b"\n\n", 1)[0])
    if found is None:
        return None
    text = re.sub(rb"\s*\n[ \t]+", b" ", found[1]).decode("utf-8", "replace").strip()
    return neutralise(text)[:100] or None


def apply_patches(patches: Iterable[Patch], root: Path) -> None:
    """Apply ``patches`` in order to the tree at ``root`` (PatchError at the first that does
    not apply, naming it and the hunk; the tree is then partly patched and must be discarded)."""
    git = shutil.which("git")
    if git is None:
        raise InfraError("--head-patch needs git (git apply): apt-get install git")
    # No repository discovery above the tree: git apply inside another repository would apply
    # relative to that repository's top and skip files outside the current directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(root.resolve().parent)
    for patch in patches:
        for check in (True, False):
            argv = [git, "apply", "-p1", "--whitespace=nowarn"]
            argv += ["--check", "-"] if check else ["-"]
            done = subprocess.run(
                argv, input=patch.text, cwd=root, env=env, capture_output=True, check=False
            )
            if done.returncode != 0:
                reason = _reason(patch, done.stderr.decode("utf-8", "replace"))
                raise PatchError(f"{patch.where()}: does not apply: {reason}")


def _reason(patch: Patch, stderr: str) -> str:
    """git apply's complaint in one line: the failing hunk when it names one."""
    lines = [line.removeprefix("error: ").strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if found := _FAILED_AT.search(line):
            return patch.hunk(found[1], int(found[2]))
    text = lines[0] if lines else "git apply failed"
    return neutralise(text)
