"""The soak harness of highseas: ``python -m soak --seconds N`` (soak/README.md)."""
