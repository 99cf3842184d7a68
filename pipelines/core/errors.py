"""The one exception type that reaches a user as a message instead of a traceback.

Anything the user can fix (a wrong name, a missing folder, a corrupt file) raises `StudioError`
with a sentence that names the problem and what to do. The CLI prints it on one line and exits
with code 2; the UI shows it as a notice.
"""


class StudioError(Exception):
    """A problem with the user's input or files, explained in one line."""
