"""The live readers (issue 22 §6): one module per source of registration evidence, siblings
behind one small interface (``base.Reader``: ``read(target) -> ReadOutcome``), the way
alertmanager keeps one package per receiver. Adapters: Azure imports allowed here; what
they read is parsed by the pure code in shared/analysis (the same as for uploads).

- ``arm_certificates``: IoT Hub and DPS certificate lists (ARM, management SDKs);
- ``dps``: a DPS's certificate list *and* its enrollment groups (data plane) as one Listing;
- ``iot_central``: an IoT Central app's enrollment groups and their certificate slots;
- ``sphere``: an Azure Sphere catalog's tenant CAs with their status (azure-mgmt-sphere).

Every reader is built for one pull with its ``Budget`` and bounded the same way
(``http``): connect 10 s, read 30 s, the pull's overall budget, requests only to the
configured endpoint's origin, no redirects, ``REQUESTS_CA_BUNDLE`` honoured.
"""
