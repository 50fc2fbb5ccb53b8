"""Store ConsensusState.arrays out of line without compression on PostgreSQL.

The arrays are replaced by every run (a few megabytes at a million grades, mostly floats that do
not compress); PostgreSQL's default pglz pass over them cost several times the write itself.
"""
from __future__ import annotations

from django.db import migrations


def _uncompressed(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE consensus_consensusstate ALTER COLUMN arrays SET STORAGE EXTERNAL")


def _default(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE consensus_consensusstate ALTER COLUMN arrays SET STORAGE EXTENDED")


class Migration(migrations.Migration):
    dependencies = [("consensus", "0005_merge_20261130_0156")]

    operations = [migrations.RunPython(_uncompressed, _default)]
