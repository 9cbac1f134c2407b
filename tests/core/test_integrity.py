"""Nothing lost, nothing silently wrong: checksummed checkpoints, the workdir lock, crash-safe logs,
and a finished run that a rerun leaves untouched."""

import json
import logging
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
from tensorboardX.proto import event_pb2

from mlfun_jax import families
from mlfun_jax.classification import inference
from mlfun_jax.core import checkpoint
from mlfun_jax.core import checksums
from mlfun_jax.core import event_files
from mlfun_jax.core import metrics_writer
from mlfun_jax.core import workdir_lock
from mlfun_jax.core.errors import UserError
from tests.conftest import run_module
from tests.conftest import small_cnn_config


def assert_trees_equal(a, b):
  assert checksums.of_tree(a) == checksums.of_tree(b)


def flip_bytes(step_dir: pathlib.Path) -> pathlib.Path:
  """Inverts 64 bytes in the middle of the largest data file of a saved state (same size)."""
  largest = max((p for p in (step_dir / 'state').rglob('*') if p.is_file()),
                key=lambda p: p.stat().st_size)
  data = bytearray(largest.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
  size = largest.stat().st_size
  largest.write_bytes(bytes(data))
  assert largest.stat().st_size == size
  return largest


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """A 20-step run (checkpoints at 10 and 20): (workdir, final state, summary)."""
  workdir = tmp_path_factory.mktemp('straight')
  state, summary = families.train_and_evaluate(small_cnn_config(eval_every=10), str(workdir))
  return workdir, state, summary


def test_checksums_name_the_arrays_that_changed():
  tree = {'params': {'w': np.arange(6, dtype=np.float32).reshape(2, 3)}, 'step': np.int32(3)}
  sums = checksums.of_tree(tree)
  assert set(sums) == {'params/w', 'step'}
  assert checksums.mismatches(tree, sums) == []
  changed = {'params': {'w': tree['params']['w'].copy()}, 'step': np.int32(3)}
  changed['params']['w'][1, 2] = np.nextafter(np.float32(5), np.float32(6))  # One ulp.
  assert checksums.mismatches(changed, sums) == ['params/w']
  # Same bytes in another shape, or a missing array: mismatches.
  assert checksums.mismatches({**tree, 'params': {'w': tree['params']['w'].reshape(3, 2)}},
                              sums) == ['params/w']
  assert checksums.mismatches({'params': tree['params']}, sums) == ['step']
  # The same value widened by a restore (int32 -> int64) matches; a changed value does not.
  assert checksums.mismatches({**tree, 'step': 3}, sums) == []
  assert checksums.mismatches({**tree, 'step': 4}, sums) == ['step']


def test_flipped_bytes_in_a_checkpoint_are_caught_resumed_past_and_refused_by_inference(
    straight, tmp_path, caplog):
  _, straight_state, _ = straight
  config = small_cnn_config(eval_every=10)
  workdir = tmp_path / 'run'
  families.train_and_evaluate(config, str(workdir))
  flip_bytes(workdir / 'checkpoints' / '20')

  # Every reader stops with one line naming the checkpoint folder and the cause: an array that
  # does not match its checksum, or, where the flip lands in a zstd-compressed chunk (the layout
  # of a background write varies), the chunk's own check.
  damaged = r'checkpoints/20 is damaged(: array .* does not match its checksum| or unreadable: .*)'
  with pytest.raises(checkpoint.DamagedCheckpointError, match=damaged):
    inference.Classifier(str(workdir))
  digit = tmp_path / 'digit.png'
  Image.fromarray(np.full((28, 28), 200, np.uint8)).save(digit)
  predict = run_module('mlfun_jax.experiments.predict', f'--workdir={workdir}', str(digit))
  assert predict.returncode == 2 and predict.stdout == ''
  line = predict.stderr.strip().splitlines()[-1]
  assert re.search(damaged, line), line

  # A resume falls back to step 10 (with a warning) and ends with the straight run's weights.
  caplog.set_level(logging.WARNING)
  state, _ = families.train_and_evaluate(config, str(workdir))
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert any(re.search(damaged, w) for w in warnings), warnings
  assert (workdir / 'checkpoints' / '20.damaged').is_dir()
  assert_trees_equal(state.params, straight_state.params)


def test_an_array_that_does_not_match_its_checksum_is_named(straight, tmp_path, monkeypatch):
  """A checkpoint whose bytes read back whole but differ from what was saved (silent corruption
  below the file format's own checks): every restore names the array."""
  source, _, _ = straight
  with checkpoint.Checkpointer(str(source / 'checkpoints'), create=False) as reader:
    meta = reader.read_meta(20)
    state = reader.restore_as_saved(20)
  meta.pop(checkpoint.CHECKSUMS)
  changed = {**state, 'params': {**state['params'], 'Dense_1': {
      **state['params']['Dense_1'], 'bias': state['params']['Dense_1']['bias'] + 1}}}
  real_sums = checksums.of_tree
  monkeypatch.setattr(checksums, 'of_tree', lambda tree: real_sums(changed))  # The sums it meant.
  with checkpoint.Checkpointer(str(tmp_path / 'checkpoints')) as writer:
    writer.save(20, state, meta)
  monkeypatch.undo()
  with pytest.raises(checkpoint.DamagedCheckpointError,
                     match=r'checkpoints/20 is damaged: array params/Dense_1/bias does not match '
                           r'its checksum$'):
    inference.Classifier(str(tmp_path))


def test_a_checkpoint_holding_nan_is_refused_by_inference(straight, tmp_path):
  source, _, _ = straight
  workdir = tmp_path / 'nan'
  with checkpoint.Checkpointer(str(source / 'checkpoints'), create=False) as reader:
    meta = reader.read_meta(20)
    state = reader.restore_as_saved(20)
  state['params']['Dense_1']['bias'][3] = np.nan
  meta.pop(checkpoint.CHECKSUMS)
  with checkpoint.Checkpointer(str(workdir / 'checkpoints')) as writer:
    writer.save(20, state, meta)  # A consistent checkpoint (its checksums match) of NaN weights.
  with pytest.raises(UserError, match=r'checkpoints/20 holds NaN or inf in params/Dense_1/bias'):
    inference.Classifier(str(workdir))


def _hold_lock(workdir: pathlib.Path, **owner) -> None:
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / workdir_lock.LOCK_FILE).write_text(json.dumps(owner))


def test_a_second_run_on_a_locked_workdir_stops_naming_the_first(tmp_path):
  live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
  try:
    workdir = tmp_path / 'busy'
    # pylint: disable-next=protected-access
    _hold_lock(workdir, host=socket.gethostname(), pid=live.pid,
               start_ticks=workdir_lock._start_ticks(live.pid), since='2026-12-05T06:00:00+00:00')
    with pytest.raises(UserError, match=rf'workdir {workdir} is in use by another run: pid '
                                        rf'{live.pid} on host {socket.gethostname()}'):
      families.train_and_evaluate(small_cnn_config(num_steps=2), str(workdir))
    assert not (workdir / 'checkpoints').exists() and not (workdir / 'metrics.jsonl').exists()
    # The command: one line, exit status 2.
    result = run_module('mlfun_jax.experiments.train', '--config=cnn_mnist',
                        f'--workdir={workdir}', '--config.num_steps=2')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f'error: workdir {workdir} is in use by another run: pid {live.pid}')
  finally:
    live.kill()
    live.wait()


def test_a_lock_of_a_dead_process_is_taken_over_and_another_hosts_lock_is_refused(
    tmp_path, caplog):
  gone = subprocess.Popen([sys.executable, '-c', 'pass'])
  gone.wait()
  workdir = tmp_path / 'stale'
  _hold_lock(workdir, host=socket.gethostname(), pid=gone.pid, start_ticks='1')
  caplog.set_level(logging.WARNING)
  families.train_and_evaluate(small_cnn_config(num_steps=2), str(workdir))
  assert any('Taking over the lock' in r.getMessage() and 'that process is gone' in r.getMessage()
             for r in caplog.records)
  assert not (workdir / workdir_lock.LOCK_FILE).exists()  # Released at the end.

  # A live pid that is another process now (its start time differs): stale too.
  _hold_lock(workdir, host=socket.gethostname(), pid=os.getppid(), start_ticks='1')
  families.train_and_evaluate(small_cnn_config(num_steps=2), str(workdir))

  other = tmp_path / 'other_host'
  _hold_lock(other, host='tpu-vm-7', pid=1234, since='2026-12-05T06:00:00+00:00')
  with pytest.raises(UserError, match=r'pid 1234 on host tpu-vm-7 .*; if that run is gone, '
                                      r'remove .*run\.lock'):
    families.train_and_evaluate(small_cnn_config(num_steps=2), str(other))


def test_a_workdir_that_is_a_file_is_one_line(tmp_path):
  path = tmp_path / 'file'
  path.write_text('not a folder')
  with pytest.raises(UserError, match=rf'cannot create workdir {path}: File exists'):
    families.train_and_evaluate(small_cnn_config(num_steps=2), str(path))


def _events(workdir: pathlib.Path) -> list[tuple[str, int]]:
  """(tag, step) of every scalar event in the run's TensorBoard files."""
  found = []
  for path in sorted((workdir / metrics_writer.TENSORBOARD_DIR).iterdir()):
    records, damaged = event_files.read_records(path.read_bytes())
    assert not damaged, path
    for record in records:
      event = event_pb2.Event()
      event.ParseFromString(record)
      found += [(value.tag, event.step) for value in event.summary.value]
  return found


def test_a_crash_after_the_last_checkpoint_leaves_single_valued_logs(straight, tmp_path, caplog):
  """The run dies after logging steps 11..20 but before checkpoint 20, in the middle of writing a
  metrics line and an event record: the resumed run drops both and re-logs 11..20 once."""
  source, _, summary = straight
  workdir = tmp_path / 'crashed'
  config = small_cnn_config(eval_every=10, num_steps=20)
  families.train_and_evaluate(config, str(workdir))
  shutil.rmtree(workdir / 'checkpoints' / '20')
  with open(workdir / metrics_writer.METRICS_FILE, 'a', encoding='utf-8') as f:
    f.write('{"step": 21, "train_lo')
  (event_file,) = (workdir / metrics_writer.TENSORBOARD_DIR).iterdir()
  with open(event_file, 'ab') as f:
    f.write(event_files.encode_record(b'\x08\x01' * 20)[:-7])
  caplog.set_level(logging.WARNING)

  _, resumed_summary = families.train_and_evaluate(config, str(workdir))
  messages = [r.getMessage() for r in caplog.records]
  assert any('metrics.jsonl line' in m and 'cut off or damaged' in m for m in messages), messages
  assert any('ends in a cut-off or damaged record' in m for m in messages), messages
  steps = [r['step'] for r in metrics_writer.read_metrics(str(workdir))]
  assert steps == [r['step'] for r in metrics_writer.read_metrics(str(source))] == [10, 10, 20, 20]
  events = _events(workdir)
  assert sorted(events) == sorted(_events(source)) and len(set(events)) == len(events)
  assert resumed_summary == summary


def _snapshot(folder: pathlib.Path) -> dict[str, bytes]:
  return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*'))
          if p.is_file()}


def test_rerunning_a_finished_run_changes_nothing_and_reports_its_numbers(straight, caplog):
  workdir, state, summary = straight
  before = _snapshot(workdir)
  caplog.set_level(logging.INFO)
  again_state, again = families.train_and_evaluate(small_cnn_config(eval_every=10),
                                                   str(workdir))
  assert _snapshot(workdir) == before
  assert again == summary
  assert any('already finished (step 20 of 20)' in r.getMessage() for r in caplog.records)
  assert_trees_equal(again_state.params, state.params)


@pytest.mark.parametrize('overrides, message', [
    (dict(num_steps=0), r'num_steps=0 must be an integer >= 1 \(or unset'),
    (dict(num_steps=-5), r'num_steps=-5 must be an integer >= 1'),
    (dict(num_steps=None, num_epochs=0.0), r'num_epochs=0.0 must be a finite number > 0'),
    (dict(num_steps=None, num_epochs=-1.0), r'num_epochs=-1.0 must be a finite number > 0'),
    (dict(num_steps=None, num_epochs=float('nan')), r'num_epochs=nan must be a finite number'),
    (dict(num_steps=None, num_epochs=float('inf')), r'num_epochs=inf must be a finite number'),
    (dict(batch_size=0), r'batch_size=0 must be an integer >= 1'),
    (dict(log_every=0), r'log_every=0 must be an integer >= 1'),
])
def test_a_run_length_or_interval_out_of_range_is_refused_before_anything_is_written(
    tmp_path, overrides, message):
  config = small_cnn_config()
  for name, value in overrides.items():
    config[name] = value
  with pytest.raises(UserError, match=message):
    families.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_an_empty_workdir_is_refused():
  with pytest.raises(UserError, match=r'^--workdir is empty'):
    families.train_and_evaluate(small_cnn_config(num_steps=2), '')
  with pytest.raises(UserError, match=r'^--workdir is empty'):
    inference.Classifier('')
