"""``obslab lab``: the workshop labs of ``labs/``, each started, checked and reset::

    obslab lab list              # every lab: not started, started, passed
    obslab lab start 2           # sets up what the lab needs (traffic, a hidden fault, a file)
    obslab lab answer 2 payments database   # for labs whose check is a finding
    obslab lab check 2           # what passed, what did not, a hint; exit 1 until it passes
    obslab lab reset 2           # undoes what start did

Exit codes: 0 done (or passed), 1 the check did not pass, 2 a refusal (an unknown lab,
a bad answer, a lab not started) or the lab not reachable.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obslab.chaos.faults import ChaosError
from obslab.errors import Unreachable
from obslab.labkit.base import Context, Exercise, LabError, Progress, Record, Step, now
from obslab.labkit.registry import exercises
from obslab.labkit.sources import native_stack
from obslab.native.lab import LabSettings

app = typer.Typer(
    help="The workshop labs (labs/README.md): start one, check your work, reset it.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

Number = Annotated[int, typer.Argument(help="The lab's number (obslab lab list).")]


def _exercise(number: int) -> Exercise:
    labs = exercises()
    if number not in labs:
        known = ", ".join(str(n) for n in sorted(labs))
        errors.print(f"[red]There is no lab {number}: the labs are {known}.[/]")
        raise typer.Exit(2)
    return labs[number]


def _context(number: int, record: Record | None = None) -> tuple[Context, Progress]:
    settings = LabSettings()
    progress = Progress(settings)
    record = record or progress.get(number)
    return Context(settings, native_stack(settings), record, number), progress


def _refuse(message: str) -> typer.Exit:
    errors.print(f"[red]{message}[/]")
    return typer.Exit(2)


@app.command("list")
def list_labs() -> None:
    """Every lab, how long it takes, and where you are with it."""
    progress = Progress(LabSettings())
    table = Table(title="obslab workshop labs (labs/README.md)")
    for column in ("lab", "title", "min", "state", "folder"):
        table.add_column(column)
    colours = {"not started": "dim", "started": "yellow", "passed": "green"}
    for number, exercise in sorted(exercises().items()):
        status = progress.get(number).status
        table.add_row(
            str(number),
            exercise.title,
            str(exercise.minutes),
            f"[{colours[status]}]{status}[/]",
            f"labs/{exercise.folder}",
        )
    console.print(table)


@app.command()
def start(number: Number) -> None:
    """Set up what the lab needs (traffic, a hidden fault, a file to edit)."""
    exercise = _exercise(number)
    before, _ = _context(number)
    context, progress = _context(number, Record(status="started", started_at=now()))
    try:
        exercise.reset(before)  # a lab started again starts afresh
        messages = exercise.start(context)
    except (Unreachable, LabError, ChaosError) as exc:
        with contextlib.suppress(Unreachable, ChaosError):
            exercise.reset(context)  # undo what start did before it failed (a fault)
        raise _refuse(f"Lab {number} could not start: {exc}") from exc
    progress.put(number, context.record)
    console.print(f"Lab {number}, {exercise.title}, started: labs/{exercise.folder}/README.md")
    for message in messages:
        console.print(message, soft_wrap=True)
    if exercise.answer_usage:
        console.print(f"Your finding: `obslab lab answer {number} {exercise.answer_usage}`.")
    console.print(f"When you are done: `obslab lab check {number}`.")


@app.command()
def answer(
    number: Number,
    words: Annotated[list[str], typer.Argument(help="Your finding, as the lab's README asks.")],
) -> None:
    """Give your finding, for labs whose check is one (the check then judges it)."""
    exercise = _exercise(number)
    progress = Progress(LabSettings())
    record = progress.get(number)
    if record.status == "not started":
        raise _refuse(f"Lab {number} is not started: `obslab lab start {number}` first.")
    try:
        record.answer = exercise.read_answer(words)
    except LabError as exc:
        raise _refuse(str(exc)) from exc
    progress.put(number, record)
    console.print(f"Noted. `obslab lab check {number}` tells you whether it is right.")


def _show(steps: list[Step]) -> None:
    for step in steps:
        mark = "[green]✓[/]" if step.passed else "[red]✗[/]"
        detail = f" [dim]({step.detail})[/]" if step.detail else ""
        console.print(f"{mark} {step.name}{detail}", soft_wrap=True)
    failed = next((s for s in steps if not s.passed), None)
    if failed is not None and failed.hint:
        console.print(f"[yellow]Hint:[/] {failed.hint}", soft_wrap=True)


@app.command()
def check(number: Number) -> None:
    """Check your work: what passed, what did not, and a hint for the first miss."""
    exercise = _exercise(number)
    context, progress = _context(number)
    if context.record.status == "not started":
        raise _refuse(f"Lab {number} is not started: `obslab lab start {number}` first.")
    try:
        steps = exercise.check(context)
    except Unreachable as exc:
        raise _refuse(f"{exc}\nIs the lab up? `uv run obslab status`.") from exc
    _show(steps)
    if not all(step.passed for step in steps):
        raise typer.Exit(1)
    context.record.status = "passed"
    progress.put(number, context.record)
    console.print(f"[green]Lab {number} passed.[/]")


@app.command()
def reset(number: Number) -> None:
    """Undo what start did, and forget this lab's progress."""
    exercise = _exercise(number)
    context, progress = _context(number)
    try:
        exercise.reset(context)
    except (Unreachable, ChaosError) as exc:
        raise _refuse(f"Lab {number} could not be reset: {exc}") from exc
    progress.forget(number)
    console.print(f"Lab {number} is reset.")
