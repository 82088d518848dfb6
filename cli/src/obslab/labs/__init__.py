"""The workshop labs of ``labs/``: ``obslab lab`` (commands.py) starts, checks and
resets them; each lab is one small module (tour.py is lab 1) on base.py's Exercise."""
