"""The test kit: what the tests and the scripts in ``hack/`` run next to a control plane, kept out
of the product (the wheel and the image do not ship it; ``pyproject.toml`` names the packages that
ship). The simulator and the operator as processes (:mod:`.stack`), seeded rounds of changes,
crashes and faults with an audit of Barrack (:mod:`.chaos`), and a fault-injecting proxy in front of
the apiserver (:mod:`.kubeproxy`). It is type-checked with the product (``mypy operator``)."""
