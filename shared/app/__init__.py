"""The function app's wiring: handlers that ``function_app.py`` calls, the blob pipeline,
the alert pass and telemetry."""
