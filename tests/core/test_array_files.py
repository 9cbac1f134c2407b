"""core.array_files: arrays and a record round-trip; damaged, foreign or missing files are one line."""

import numpy as np
import pytest

from mlfun_jax.core import array_files
from mlfun_jax.core.errors import UserError


def test_arrays_and_meta_round_trip(tmp_path):
  path = tmp_path / 'd.npz'
  arrays = {'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'b': np.int32(7)}
  array_files.save(path, arrays, {'window': [24, 20]})
  loaded, meta = array_files.load(path)
  assert meta == {'window': [24, 20]}
  assert set(loaded) == {'w', 'b'}
  np.testing.assert_array_equal(loaded['w'], arrays['w'])
  assert loaded['w'].dtype == np.float32 and int(loaded['b']) == 7
  assert not (tmp_path / 'd.npz.tmp').exists()


def test_flipped_byte_junk_and_missing_files_name_the_file(tmp_path):
  path = tmp_path / 'd.npz'
  w = np.arange(64, dtype=np.float64)
  array_files.save(path, {'w': w})
  data = bytearray(path.read_bytes())
  data[data.find(w.tobytes()) + 100] ^= 1
  path.write_bytes(bytes(data))
  with pytest.raises(UserError, match=r"face detector '.*d\.npz' is damaged"):
    array_files.load(path, 'face detector')
  path.write_bytes(b'not a zip')
  with pytest.raises(UserError, match=r"d\.npz' is damaged or not"):
    array_files.load(path)
  with pytest.raises(UserError, match=r"'.*nothing\.npz' does not exist"):
    array_files.load(tmp_path / 'nothing.npz')


def test_a_changed_array_with_a_valid_zip_fails_its_checksum(tmp_path):
  path, other = tmp_path / 'd.npz', tmp_path / 'e.npz'
  array_files.save(path, {'w': np.zeros(3)})
  array_files.save(other, {'w': np.ones(3)})
  # Rebuild d.npz with e's array but d's record: the zip is whole, the array is not d's.
  import zipfile
  with zipfile.ZipFile(path) as a, zipfile.ZipFile(other) as b:
    record, array = a.read('__record__.npy'), b.read('w.npy')
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('w.npy', array)
    z.writestr('__record__.npy', record)
  with pytest.raises(UserError, match=r"array 'w' fails its checksum"):
    array_files.load(path)
