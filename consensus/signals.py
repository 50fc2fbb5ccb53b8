"""Signals of the consensus app, so that apps above it react to a stored consensus without being
imported by it (imports point one way)."""
from django.dispatch import Signal

# Sent after the transaction that stored one or more successful consensus runs commits, once per
# compute or recompute (a recompute of every dimension announces its runs together, so a
# listener never acts on a half-updated consensus). kwargs: project_id, run_ids (list of int).
consensus_run_stored = Signal()
