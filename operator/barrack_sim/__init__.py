"""A stand-in for the Barrack API: an in-memory account with Barrack's state machines and rules,
served as an ASGI app under ``/api``, with fault injection and an admin API under ``/_sim/``.

It imports only the wire contract of ``barrack_operator.barrack`` (``routes`` and ``models``).
"""
