"""The answer loop: Observe -> Remember -> Reason -> Act -> Verify -> Converge (see run.py)."""

from lantern.loop.run import answer

__all__ = ["answer"]
