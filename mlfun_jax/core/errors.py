"""The one exception type for bad user input (flags, configs, data files, checkpoints).

Entry points catch `UserError`, print its message as a single line and exit non-zero; the message
must name the culprit (the flag, config field, file or directory).
"""


class UserError(Exception):
  """Bad input from the user; `str(error)` is a one-line message naming the culprit."""


# Causes of a failed write that lie in the machine, not in the program (as the OS words them).
_ENVIRONMENT_CAUSES = ("No space left on device", "Read-only file system", "Permission denied",
                       "Not a directory", "Is a directory", "File exists", "Disk quota exceeded",
                       "File too large")


def environment_cause(error: BaseException) -> str | None:
  """The OS's words for why `error` (or an exception it was raised from) failed, when the cause is
  the machine (a full disk, a read-only folder, a file where a folder should be); else None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.strerror:
      return error.strerror
    text = str(error)
    for cause in _ENVIRONMENT_CAUSES:
      if cause.lower() in text.lower():
        return cause
    error = error.__cause__ or error.__context__
  return None
