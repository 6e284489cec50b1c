"""Local tooling: the ``ca-watch`` command, the local runner that drives the registered
functions on Azurite, Azurite control and sample certificates. Never imported by the
function app, and kept out of the deployment (``.funcignore``)."""
