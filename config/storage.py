"""The local-disk media storage of the embedded default, writing each file whole."""
from __future__ import annotations

import os
import tempfile

from django.core.files.storage import FileSystemStorage


class AtomicFileSystemStorage(FileSystemStorage):
    """Django's file storage, except that a file appears under its name only once fully written.

    Django writes in place, so another process (a second gunicorn worker asked for the same
    rendition) could stream a half-written file. Here the bytes go to a temporary file in the same
    folder, which is then hard-linked to its name: the link fails if the name exists, so an existing
    file is never replaced and the next free name is taken, as Django would.
    """

    def _save(self, name: str, content) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as output:
                if hasattr(content, "seek"):
                    content.seek(0)
                for chunk in content.chunks():
                    output.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            while True:
                try:
                    os.link(temporary, full_path)
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
                except OSError:
                    # A file system without hard links: fall back to Django's own writing.
                    with open(temporary, "rb") as source:
                        from django.core.files import File

                        return super()._save(name, File(source))
        finally:
            os.unlink(temporary)
        if self.file_permissions_mode is not None:
            os.chmod(full_path, self.file_permissions_mode)
        return str(name).replace("\\", "/")
