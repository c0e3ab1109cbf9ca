"""Kopf glue only: each kind's module registers an event hook (the body for the runtime's work
queue, references and wake-ups) and a deletion handler, all delegating to ``resources``."""
