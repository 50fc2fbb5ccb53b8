"""Signals other apps listen to, so that annotation never imports them (imports point one way)."""
from django.dispatch import Signal

# Sent after the submitting transaction commits; kwargs: assignment_id, radiograph_id, project_id.
assignment_submitted = Signal()
