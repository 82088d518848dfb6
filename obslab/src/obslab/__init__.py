"""obslab: the command that runs the native lab: the shop and its monitoring as processes."""
