"""Drills: a full disk at a checkpoint, a read-only workdir, paths of the wrong kind. Each ends in
one line naming the path and the cause, leaves no half-written checkpoint behind, and the same
command resumes once the cause is gone.

The disk is a small tmpfs where the machine allows mounting one (root); elsewhere the full disk is
simulated (orbax's save fails as it does on ENOSPC, after creating its temporary folder) and the
read-only workdir is a folder without write permission.
"""

import contextlib
import os
import pathlib
import subprocess

import orbax.checkpoint as ocp
import pytest

from mlfun_jax import families
from mlfun_jax.core import checkpoint
from mlfun_jax.core import checksums
from mlfun_jax.core import workdir_lock
from mlfun_jax.core.errors import UserError
from tests.conftest import run_module
from tests.conftest import small_cnn_config

CONFIG = dict(num_steps=4, checkpoint_every=2, eval_every=0, log_every=2)


@contextlib.contextmanager
def small_disk(path: pathlib.Path, size_kib: int):
  """Yields True with a tmpfs of `size_kib` mounted at `path`, False (a plain folder) where the
  machine does not allow it."""
  path.mkdir()
  try:
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size_kib}k', 'tmpfs',
                              str(path)], capture_output=True, check=False).returncode == 0
  except OSError:
    mounted = False
  try:
    yield mounted
  finally:
    if mounted:
      subprocess.run(['umount', '-l', str(path)], check=False)


def _fill(disk: pathlib.Path, leave_kib: int) -> pathlib.Path:
  stats = os.statvfs(disk)
  free = stats.f_bavail * stats.f_frsize
  filler = disk / 'filler'
  with open(filler, 'wb') as f:
    f.truncate(0)
    f.write(b'\0' * max(0, free - leave_kib * 1024))
  return filler


def _simulate_full_disk(monkeypatch):
  """orbax's save creates its temporary folder, then fails as tensorstore does on ENOSPC."""
  def save(self, step, *unused_args, **unused_kwargs):
    (pathlib.Path(self.directory) / f'{step}.orbax-checkpoint-tmp').mkdir()
    raise ValueError('RESOURCE_EXHAUSTED: Error writing "params.Dense_0.kernel/0" in OCDBT '
                     'database: [OS error: No space left on device]')
  monkeypatch.setattr(ocp.CheckpointManager, 'save', save)


def _leftovers(workdir: pathlib.Path) -> list[str]:
  return sorted(p.name for p in (workdir / 'checkpoints').iterdir() if 'tmp' in p.name)


def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_run_resumes_when_space_is_back(
    tmp_path, monkeypatch):
  config = small_cnn_config(**CONFIG)
  straight, _ = families.train_and_evaluate(config, str(tmp_path / 'straight'))
  with small_disk(tmp_path / 'disk', size_kib=1200) as mounted:
    workdir = tmp_path / 'disk' / 'run'
    families.train_and_evaluate(config, str(workdir), stop_after_step=2)
    if mounted:
      filler = _fill(tmp_path / 'disk', leave_kib=60)
    else:
      monkeypatch.undo()
      _simulate_full_disk(monkeypatch)
    with pytest.raises(UserError) as error:
      families.train_and_evaluate(config, str(workdir))
    assert str(error.value).startswith(
        f'cannot write checkpoint {workdir}/checkpoints/4: No space left on device; the same '
        'command resumes from the last good checkpoint once the cause is gone'), error.value
    assert _leftovers(workdir) == []  # No half-written checkpoint folder.
    assert checkpoint.Checkpointer(str(workdir / 'checkpoints')).steps() == [2]
    assert not (workdir / workdir_lock.LOCK_FILE).exists()

    if mounted:
      filler.unlink()
    else:
      monkeypatch.undo()
    resumed, _ = families.train_and_evaluate(config, str(workdir))
    assert checksums.of_tree(resumed.params) == checksums.of_tree(straight.params)


def test_a_read_only_workdir_is_one_line_and_the_run_resumes_once_writable(tmp_path):
  config = small_cnn_config(**CONFIG)
  with small_disk(tmp_path / 'disk', size_kib=4096) as mounted:
    workdir = tmp_path / 'disk' / 'run'
    families.train_and_evaluate(config, str(workdir), stop_after_step=2)
    if mounted:
      subprocess.run(['mount', '-o', 'remount,ro', str(tmp_path / 'disk')], check=True)
      cause = 'Read-only file system'
    else:
      workdir.chmod(0o555)
      cause = 'Permission denied'
    try:
      result = run_module('mlfun_jax.experiments.train', '--config=cnn_mnist',
                          f'--workdir={workdir}', '--config.num_steps=4',
                          '--config.model.conv_features=(8,16)',
                          '--config.model.dense_features=(32,)', '--config.checkpoint_every=2',
                          '--config.eval_every=0', '--config.log_every=2')
      assert result.returncode == 2
      assert result.stderr.strip().splitlines()[-1] == (
          f'error: cannot write the lock in workdir {workdir}: {cause}')
    finally:
      if mounted:
        subprocess.run(['mount', '-o', 'remount,rw', str(tmp_path / 'disk')], check=True)
      else:
        workdir.chmod(0o755)
    assert checkpoint.Checkpointer(str(workdir / 'checkpoints')).steps() == [2]
    state, _ = families.train_and_evaluate(config, str(workdir))
    assert int(state.step) == 4


@pytest.mark.parametrize('name, make, kind', [
    ('checkpoints', 'file', 'a folder, not a file'),
    ('tensorboard', 'file', 'a folder, not a file'),
    ('metrics.jsonl', 'folder', 'a file, not a folder'),
])
def test_a_workdir_path_of_the_wrong_kind_is_found_at_the_start(tmp_path, name, make, kind):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  if make == 'file':
    (workdir / name).write_text('')
  else:
    (workdir / name).mkdir()
  with pytest.raises(UserError, match=rf'^{workdir / name} must be {kind}: move it away'):
    families.train_and_evaluate(small_cnn_config(num_steps=2), str(workdir))
