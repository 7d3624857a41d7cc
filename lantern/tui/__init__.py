"""`lantern chat`: the Textual TUI, a door onto the answer loop's event stream.

`app.py` holds the App: a thread worker iterates `lantern.loop.events` and posts one Message per
event (`messages.py`); the App's handlers, on the UI thread, hand each one to the widget that shows
it (`widgets/`, one per file). Nothing here re-implements a stage of the loop: what the screen
shows is what the events carry. `depth.py`, `citations.py` and `format.py` are the pure pieces of
how events look on screen.

Importing this package imports nothing heavy: `lantern chat` must be interactive quickly.
"""
