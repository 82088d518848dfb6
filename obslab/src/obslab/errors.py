"""What the obslab command's parts raise when a part of the stack does not answer."""


class Unreachable(Exception):
    """A part of the stack did not answer: the lab is probably not up."""
