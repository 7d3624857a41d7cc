"""One module per command group of the `lantern` CLI; each exposes `register(app)`."""
