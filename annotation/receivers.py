"""Reactions to this app's own model events, connected in `AnnotationConfig.ready()`."""
from __future__ import annotations

from functools import partial

from django.db import transaction

from . import services


def radiograph_files_remove_on_delete(sender, *, instance, **kwargs) -> None:
    # After the commit only: a rolled-back delete must find its files still there.
    transaction.on_commit(partial(
        services.radiograph_files_remove,
        project_id=instance.project_id, checksum=instance.checksum, image_name=instance.image.name,
    ))
