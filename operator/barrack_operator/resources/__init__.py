"""Domain logic per kind: spec and status models and the reconcile (observe, plan, act). No kopf."""
