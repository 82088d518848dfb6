"""The inventory service of the obslab shop."""
