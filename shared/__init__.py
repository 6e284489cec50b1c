"""CA Rotation Watch: the pure core (reader, facts, classification, rules, alert planning)
and the adapters at its edges (store, channels, settings, telemetry, CLI)."""
