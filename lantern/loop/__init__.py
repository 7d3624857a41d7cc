"""The answer loop: Observe -> Remember -> Reason -> Act -> Verify -> Converge (see run.py).

    from lantern.loop import events
    for event in events(question, settings, history=None, cancel=None): ...   # lantern.events records
"""

from lantern.loop.run import answer, events

__all__ = ["answer", "events"]
