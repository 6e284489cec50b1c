"""CA Rotation Watch. One folder per concern: ``analysis`` and ``alerts`` are the pure core;
``storage`` and ``channels`` are adapters; ``app`` is the wiring the function app calls;
``local`` is the ``ca-watch`` tooling. ``settings`` is the one leaf every adapter reads."""
