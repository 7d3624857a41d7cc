"""The chat TUI's widgets, one per file. Each shows what it is handed by the App's message
handlers and knows nothing about the worker or the loop's internals."""
