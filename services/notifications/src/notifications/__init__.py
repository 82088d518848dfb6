"""The notifications service of the obslab shop."""
