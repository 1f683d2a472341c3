"""Zip files that are the same bytes for the same contents: fixed times and modes, names in
sorted order. A bundle built twice from the same install and flags is the same file."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

# The earliest time a zip entry can carry; any fixed one makes builds reproducible.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_REGULAR_FILE = 0o100644  # rw-r--r--


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deflated zip of `files` (archive name -> content), names in sorted order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = _REGULAR_FILE << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()
