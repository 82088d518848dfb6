"""The catalog service of the obslab shop."""
