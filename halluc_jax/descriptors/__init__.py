"""Auxiliary descriptors: power normalisation, count sketch, ODF, SDF, flow features."""
