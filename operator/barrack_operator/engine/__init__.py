"""The engine, free of kopf, one module a job: ``runtime`` (the work queue's passes),
``references`` (what each object references and who references it), ``writer`` (status,
events, finalizers, the create mark), ``account_set`` and ``money`` (accounts, balance, burn),
``mutations`` (seeing a pass's own calls), ``schedules`` (snapshot schedules' passes),
``uninstall``, ``lease`` and ``health``. ``handlers/`` is kopf's glue to it; ``resources/``
holds what each kind decides."""
