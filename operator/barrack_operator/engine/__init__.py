"""The engine, free of kopf: the references registry, the runtime that runs every object's passes
from one work queue and writes their outcomes, and the health endpoints. ``handlers/`` is kopf's
glue to it; ``resources/`` holds what each kind decides."""
