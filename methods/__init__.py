"""The methods being compared: each small, documented, registered (see bench.registry)."""
