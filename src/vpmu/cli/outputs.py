"""The output files of one command: checked before the run, written all or nothing after it.

A run can take minutes, so nothing about where its results go may be found out after it:
:meth:`Outputs.claim` checks every path (not a directory, not a device, not an input of the
command, not given twice, its directory there) and creates a temporary file beside each one,
which proves the directory writable, all before the run starts. :meth:`Outputs.commit` writes
every output to its temporary file first and only then renames each into place, so a kill or a
full disk leaves the previous files whole (a rename is atomic), and a failed write replaces none
of them. Temporary files are named ``.<name>.<random>.vpmu-tmp`` and removed on every way out
but a kill. An output is rendered as text, or written to its temporary file by a writer (an
export built while the run went, too large to hold as one string).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from vpmu.errors import InputError

TMP_SUFFIX = ".vpmu-tmp"

Writer = Callable[[IO[str]], None]
"""Writes an output to an open text file."""
Render = Callable[[], str | Writer]
"""Makes an output: its text, or a writer of it."""


@dataclass
class _Claim:
    option: str
    path: Path
    """As the user gave it (for messages)."""
    target: Path
    """Where it is renamed to: symlinks resolved, so a link keeps pointing at the new file."""
    tmp: Path | None = None
    mode: int = 0o644


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Outputs:
    """The outputs ``{option: path}`` of one command (None = not asked for)."""

    def __init__(self, wanted: Mapping[str, Path | None], *, inputs: Iterable[Path] = ()
                 ) -> None:
        self.claims = [_Claim(o, p, Path(os.path.realpath(p)))
                       for o, p in wanted.items() if p is not None]
        self.inputs = {Path(os.path.realpath(p)): p for p in inputs}

    def __enter__(self) -> Outputs:
        self.claim()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._discard()

    def claim(self) -> None:
        """Check every path and create its temporary file; InputError naming the option at
        the first one that cannot be written (the temporary files made so far are removed)."""
        seen: dict[Path, str] = {}
        try:
            for c in self.claims:
                if c.target in seen:
                    raise InputError(f"{c.option} {c.path}", f"is also the file of "
                                                             f"{seen[c.target]}")
                seen[c.target] = c.option
                self._claim(c)
        except BaseException:
            self._discard()
            raise

    def _claim(self, c: _Claim) -> None:
        where = f"{c.option} {c.path}"
        if c.target in self.inputs:
            raise InputError(where, f"is the input {self.inputs[c.target]}; refusing to "
                                    "overwrite it")
        parent = c.target.parent
        try:
            st = c.target.stat()
        except FileNotFoundError:
            st = None
        except OSError as err:
            raise InputError(where, err.strerror or str(err)) from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise InputError(where, "is a directory")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise InputError(where, "is not a regular file (outputs are written to a "
                                    "temporary file and renamed into place)")
        if st is not None and not os.access(c.target, os.W_OK):
            raise InputError(where, "is not writable")
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise InputError(where, f"directory {parent} {what}")
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{c.target.name}.",
                                       suffix=TMP_SUFFIX)
        except OSError as err:
            raise InputError(where, f"cannot create a file in {parent}: "
                                    f"{err.strerror or err}") from None
        os.close(fd)
        c.tmp = Path(tmp)
        c.mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()

    def commit(self, render: Mapping[str, Render]) -> list[tuple[str, Path]]:
        """Write every claimed output (``render[option]()`` gives its text or a writer) to
        its temporary file, then rename them all into place; the (option, path) pairs
        written. A write that fails raises InputError and replaces no file."""
        for c in self.claims:
            assert c.tmp is not None, "commit() needs claim() first"
            made = render[c.option]()
            try:
                with open(c.tmp, "w", encoding="utf-8") as f:
                    if isinstance(made, str):
                        f.write(made)
                    else:
                        made(f)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(c.tmp, c.mode)
            except OSError as err:
                self._discard()
                raise InputError(f"{c.option} {c.path}", f"{err.strerror or err}; no output "
                                                         "was written") from None
        done = []
        for c in self.claims:
            assert c.tmp is not None
            os.replace(c.tmp, c.target)
            c.tmp = None
            done.append((c.option, c.path))
        return done

    def _discard(self) -> None:
        for c in self.claims:
            if c.tmp is not None:
                c.tmp.unlink(missing_ok=True)
                c.tmp = None
