"""Where the obslab checkout is: the command reads the shop's configs, the workshop labs
and the chaos experiments from the repository it is run in, found the way git finds its
own, by walking up from the working directory (or named by ``OBSLAB_REPO``)."""

from __future__ import annotations

import os
from pathlib import Path

#: What marks the top of a checkout: the SLO file every generator, lab and load run reads.
MARKER = Path("observability") / "slo.yaml"


def find(start: Path | None = None) -> Path | None:
    """The checkout holding ``start`` (the working directory), or None outside one."""
    if named := os.environ.get("OBSLAB_REPO"):
        return Path(named).resolve()
    here = (start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if (folder / MARKER).is_file()), None)


#: The checkout, or the working directory outside one (the CLI then refuses to run).
ROOT = find() or Path.cwd()
OBSERVABILITY = ROOT / "observability"
LABS = ROOT / "labs"
EXPERIMENTS = ROOT / "chaos" / "experiments"
SCENARIOS = ROOT / "load" / "scenarios"
SLO_FILE = OBSERVABILITY / "slo.yaml"
