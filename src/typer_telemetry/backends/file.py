"""Append batches as JSON lines to a local file: for air-gapped tools and for debugging."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .._paths import O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK, PRIVATE_FILE_MODE
from .base import Batch, DeliveryError

if TYPE_CHECKING:
    from .._records import JSONDocument


class FileBackend:
    """Each batch and each deletion request becomes one JSON line appended to `path`.

    The file is created 0600 and only ever a regular file of ours: a symlink
    at `path` is not followed, a named pipe (which could block the sender) or
    a file another user owns is refused, and a file of ours that others may
    read is tightened to 0600 before anything is appended.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _append(self, document: JSONDocument) -> None:
        line = json.dumps(document, separators=(",", ":")).encode() + b"\n"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
        try:
            descriptor = os.open(self.path, flags, PRIVATE_FILE_MODE)
        except OSError as error:  # a link (ELOOP), a pipe without a reader (ENXIO), ...
            raise DeliveryError(f"cannot append to {self.path}: {error}") from None
        try:
            found = os.fstat(descriptor)
            if not stat.S_ISREG(found.st_mode):
                raise DeliveryError(f"cannot append to {self.path}: it is not a regular file")
            if hasattr(os, "geteuid") and found.st_uid != os.geteuid():
                raise DeliveryError(
                    f"cannot append to {self.path}: it is owned by another user"
                    f" (uid {found.st_uid})"
                )
            if hasattr(os, "fchmod") and stat.S_IMODE(found.st_mode) & 0o077:
                os.fchmod(descriptor, PRIVATE_FILE_MODE)  # ours: make it ours alone
            written = os.write(descriptor, line)
            if written != len(line):
                raise DeliveryError(f"cannot append to {self.path}: short write (disk full?)")
        except OSError as error:
            raise DeliveryError(f"cannot append to {self.path}: {error}") from None
        finally:
            os.close(descriptor)

    def send(self, batch: Batch, *, timeout: float) -> None:
        self._append(
            {
                "kind": "batch",
                **batch.to_json(),
            }
        )

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        self._append({"kind": "deletion", "install_id": install_id})
