"""The payments service of the obslab shop."""
