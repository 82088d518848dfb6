"""The gateway service of the obslab shop."""
