"""The orders service of the obslab shop."""
