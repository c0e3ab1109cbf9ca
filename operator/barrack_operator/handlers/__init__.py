"""Kopf glue only: registration of each kind's watch (its events go to the engine's runtime,
snapshot schedules' and BarrackAccounts' too), kopf's settings and the operator's life around
kopf (``serve``). Nothing here decides what to do with an object: ``engine/`` and ``resources/``
do."""
