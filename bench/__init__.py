"""The benchmark: the stack against a bare ASGI ceiling on the same queries (`scripts/bench.sh`)."""
