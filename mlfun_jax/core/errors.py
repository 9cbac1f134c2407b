"""The one exception type for bad user input (flags, configs, data files, checkpoints).

Entry points catch `UserError`, print its message as a single line and exit non-zero; the message
must name the culprit (the flag, config field, file or directory).
"""


class UserError(Exception):
  """Bad input from the user; `str(error)` is a one-line message naming the culprit."""
