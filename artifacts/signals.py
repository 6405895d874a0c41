"""Signals other apps listen to, so artifacts/ never imports what builds on it (the registry reacts to the bytes)."""

from django.dispatch import Signal

#: Sent inside the transaction that changed a blob's verification state, under the blob's row lock, before the
#: change is audited; with `blob` (its new state) and `before` (the state it had). Receivers record through a
#: ChangeSet (core/changes.py), which joins the verification's own: their events and entries are written with its.
blob_state_changed = Signal()
