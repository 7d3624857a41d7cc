"""Error types whose message is shown to the user as one line that says what to do.

The CLI prints `error: <message>` for any LanternError and exits 1, never a stack trace.
Subclasses say which part failed; `retryable` tells callers (the answer loop, the server)
whether trying again can help.
"""


class LanternError(Exception):
    """A failure the user can act on; str(error) is the one-line message."""

    retryable = False


class NotAvailableYet(LanternError):
    """A command whose feature has not landed yet."""


class ModelNotFound(LanternError):
    """No weights for the requested model where Lantern looked."""


class CheckpointError(LanternError):
    """Weights or config exist but are malformed, truncated or of the wrong shape."""


class KnowledgeBaseError(LanternError):
    """The knowledge base is missing, built with another embedder, or unreadable."""


class ToolCallError(LanternError):
    """A tool call that is malformed or failed; the model may retry with the message."""

    retryable = True


class BackendError(LanternError):
    """The reasoning backend (a local model folder, an HTTP endpoint) cannot answer."""

    retryable = True
