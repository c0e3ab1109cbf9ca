"""Kopf glue only: each kind's module registers a daemon (the reconcile loop), an event hook
(references and wake-ups) and a deletion handler, all delegating to ``resources``."""
