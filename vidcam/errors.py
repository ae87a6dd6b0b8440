"""The one exception type that reaches users as a single line on stderr."""


class VidcamError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""
