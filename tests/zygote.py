"""A forking launcher for the tests' `python -m module ...` and `python -c code ...` commands.

Each such command used to start a new interpreter that spent 2-3 s importing JAX, Flax, Orbax and
the project before doing anything: about a hundred commands per test run. The zygote is one
process per pytest worker that has done those imports (and nothing else: no JAX backend, no
flags, no threads but OpenBLAS' fork-safe pool). For each command it forks a child that takes the
command's argv, environment, working folder and stdin/stdout/stderr, runs the module or code as the
interpreter would (`runpy` with `__main__`, exit status from SystemExit, non-daemon threads joined
and atexit functions run before it exits) and reports the exit status.

Commands whose environment differs from the zygote's in a variable read at import time (JAX_*,
MPL*, PYTHON*) start a real interpreter instead; so do the tests of import side effects, console
scripts, launch scripts and signals, which call subprocess themselves.

  python -m tests.zygote SOCKET     # the server (started by `run`, one per pytest process)
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pathlib
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback

# What the commands import first; none of it initialises a JAX backend or defines a flag.
PRELOAD = ('numpy', 'scipy.linalg', 'scipy.signal', 'jax', 'jax.numpy', 'flax.linen', 'optax',
           'orbax.checkpoint', 'absl.app', 'absl.flags', 'absl.logging', 'ml_collections',
           'PIL.Image', 'matplotlib.pyplot', 'tensorboardX', 'mlfun_jax.families',
           'mlfun_jax.core.cli')
# Environment variables read while those modules are imported: a command that sets them
# differently gets a real interpreter.
_IMPORT_TIME_PREFIXES = ('JAX_', 'MPL', 'PYTHON', 'TF_', 'OMP_', 'OPENBLAS_')
_MAX_MESSAGE = 1 << 20


# ----------------------------------------------------------------------------------------- server


def serve(socket_path: str) -> None:
  """Imports PRELOAD, then forks one child per request on `socket_path` (one request at a time)."""
  for name in PRELOAD:
    importlib.import_module(name)
  server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  server.bind(socket_path)
  server.listen(1)
  sys.stdout.write('ready\n')
  sys.stdout.flush()
  while True:
    # The client holds our stdin open: end-of-file means it has gone (even killed), so do we.
    readable, _, _ = select.select([server, sys.stdin], [], [])
    if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
      return
    if server not in readable:
      continue
    connection, _ = server.accept()
    message, fds, _, _ = socket.recv_fds(connection, _MAX_MESSAGE, 3)
    request = json.loads(message)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
      server.close()
      connection.close()
      _run_child(request, fds)  # Never returns.
    for fd in fds:
      os.close(fd)
    with connection:
      connection.sendall(f'{pid}\n'.encode())
      _, status = os.waitpid(pid, 0)
      try:
        connection.sendall(f'{os.waitstatus_to_exitcode(status)}\n'.encode())
      except OSError:  # The client gave up (a timeout): it killed the child and left.
        pass


def _run_child(request: dict, fds: list[int]) -> None:
  code = 1
  try:
    for target, fd in enumerate(fds):
      os.dup2(fd, target)
      os.close(fd)
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    if request['module']:
      sys.argv = [request['module'], *request['args']]
      sys.path[0] = os.getcwd()  # As `python -m` puts it.
      runpy.run_module(request['module'], run_name='__main__', alter_sys=True)
    else:
      sys.argv = ['-c', *request['args']]
      sys.path[0] = ''  # As `python -c` puts it.
      exec(compile(request['code'], '<string>', 'exec'), {'__name__': '__main__'})  # pylint: disable=exec-used
    code = 0
  except SystemExit as stop:
    code = _exit_code(stop)
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
  try:
    threading._shutdown()  # pylint: disable=protected-access
    atexit._run_exitfuncs()  # pylint: disable=protected-access
    sys.stdout.flush()
    sys.stderr.flush()
  finally:
    os._exit(code)  # pylint: disable=protected-access


def _exit_code(stop: SystemExit) -> int:
  if stop.code is None:
    return 0
  if isinstance(stop.code, int):
    return stop.code
  sys.stderr.write(f'{stop.code}\n')
  return 1


# ----------------------------------------------------------------------------------------- client


class _Zygote:
  """The server of this pytest process, started on first use."""

  def __init__(self):
    self.folder = tempfile.mkdtemp(prefix='mlfun_jax_zygote_')
    self.path = os.path.join(self.folder, 'socket')
    self.environment = dict(os.environ)
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'tests.zygote', self.path],
        cwd=pathlib.Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    assert self.process.stdout.readline().strip() == 'ready', 'the test zygote did not start'
    atexit.register(self.stop)

  def serves(self, env: dict[str, str]) -> bool:
    if self.process.poll() is not None:
      return False
    keys = {k for k in (*env, *self.environment) if k.startswith(_IMPORT_TIME_PREFIXES)}
    return all(env.get(k) == self.environment.get(k) for k in keys)

  def stop(self):
    if self.process.poll() is None:
      self.process.kill()
      self.process.wait()
    for name in os.listdir(self.folder):
      os.remove(os.path.join(self.folder, name))
    os.rmdir(self.folder)


_zygote: _Zygote | None = None


def run(argv: list[str], *, cwd, env: dict[str, str], input: str | None = None,  # pylint: disable=redefined-builtin
        timeout: float = 300) -> subprocess.CompletedProcess:
  """`subprocess.run(argv, cwd=cwd, env=env, input=input, capture_output=True, text=True,
  timeout=timeout)` for argv = [sys.executable, '-m', module, ...] or [sys.executable, '-c', code,
  ...], forked from the zygote when it can serve the environment."""
  global _zygote
  if _zygote is None:
    _zygote = _Zygote()
  assert argv[0] == sys.executable and argv[1] in ('-m', '-c'), argv
  if not _zygote.serves(env):
    return subprocess.run(argv, cwd=cwd, env=env, input=input, capture_output=True, text=True,
                          timeout=timeout, check=False)
  request = {'module': argv[2] if argv[1] == '-m' else None,
             'code': argv[2] if argv[1] == '-c' else None,
             'args': list(argv[3:]), 'cwd': str(cwd), 'env': dict(env)}
  # stdin, stdout and stderr are unnamed files: no pipe to keep draining while the child runs.
  with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, \
       tempfile.TemporaryFile() as stderr, \
       socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
    stdin.write((input or '').encode())
    stdin.seek(0)
    connection.connect(_zygote.path)
    socket.send_fds(connection, [json.dumps(request).encode()],
                    [stdin.fileno(), stdout.fileno(), stderr.fileno()])
    replies = connection.makefile('r')
    pid = int(replies.readline())
    connection.settimeout(timeout)
    try:
      returncode = int(replies.readline())
    except TimeoutError:
      os.kill(pid, signal.SIGKILL)
      raise subprocess.TimeoutExpired(argv, timeout) from None
    outputs = [_text(stream) for stream in (stdout, stderr)]
  return subprocess.CompletedProcess(argv, returncode, *outputs)


def _text(stream) -> str:
  """What a finished child wrote to `stream`, read as `text=True` reads it."""
  stream.seek(0)
  text = stream.read().decode('utf-8', errors='replace')
  return text.replace('\r\n', '\n').replace('\r', '\n')


if __name__ == '__main__':
  serve(sys.argv[1])
