"""The offline target side: descriptor extraction, its visual check, target probes."""
