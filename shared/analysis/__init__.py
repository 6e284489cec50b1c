"""The pure analysis core: read an upload into certificates, walk their DER, extract facts,
classify them against the rules, check chains, and build scan results. No Azure import, no I/O."""
