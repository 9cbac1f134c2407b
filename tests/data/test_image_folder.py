"""Tests for mlfun_jax.data.image_folder: class folders in a folder or .zip, split and cache."""

from __future__ import annotations

import io
import logging
import os
import pathlib
import zipfile

import numpy as np
from PIL import Image
import pytest

from mlfun_jax.data import images as images_lib
from mlfun_jax.data import image_cache
from mlfun_jax.data import image_folder
from mlfun_jax.data import load_image_dataset
from mlfun_jax.data import load_image_folder
from mlfun_jax.core.errors import UserError

# Written in this (unsorted) order; labels follow the sorted names: ant 0, cat 1, dog 2.
COUNTS = {'cat': 12, 'ant': 7, 'dog': 5}
CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
                 'truck')


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path, monkeypatch):
  """A test that forgets cache_dir still never writes to ~/.cache."""
  monkeypatch.setenv('MLFUN_CACHE_DIR', str(tmp_path / 'env_cache'))


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, fmt, **({'quality': 95} if fmt == 'JPEG' else {}))
  return buffer.getvalue()


def _red(label: int, i: int) -> int:
  """The red value of image i of class `label`: rises by 4 along the sorted path order (JPEG is off
  by 1 or so)."""
  return 60 * label + 6 + 4 * i


def _make_folder(root: pathlib.Path, size=(6, 8)) -> pathlib.Path:
  """COUNTS images (H, W) = size, solid red _red(label, i); every 4th a .JPG, the rest .png.

  Also junk that must be ignored: a text file, hidden files and folders, __MACOSX.
  """
  labels = {name: i for i, name in enumerate(sorted(COUNTS))}
  for name, count in COUNTS.items():
    (root / name).mkdir(parents=True)
    for i in range(count):
      pixels = np.zeros(size + (3,), np.uint8)
      pixels[..., 0] = _red(labels[name], i)
      jpeg = i % 4 == 3
      (root / name / f'{i:03d}.{"JPG" if jpeg else "png"}').write_bytes(
          _encode(pixels, 'JPEG' if jpeg else 'PNG'))
  (root / 'cat' / 'notes.txt').write_text('not an image')
  (root / 'cat' / '.hidden.png').write_bytes(b'junk')
  (root / '.thumbs').mkdir()
  (root / '.thumbs' / 'x.png').write_bytes(b'junk')
  return root


def _zip(folder: pathlib.Path, zip_path: pathlib.Path, prefix: str = 'train/') -> pathlib.Path:
  """Stores folder's files under prefix, plus a __MACOSX copy of one (to be ignored)."""
  with zipfile.ZipFile(zip_path, 'w') as zf:
    for path in sorted(folder.rglob('*')):
      if path.is_file():
        zf.write(path, prefix + path.relative_to(folder).as_posix())
    zf.writestr('__MACOSX/train/cat/._000.png', b'junk')
  return zip_path


def _red_values(split) -> np.ndarray:
  return split.images[:, 0, 0, 0].astype(int)


@pytest.fixture
def folder(tmp_path):
  return _make_folder(tmp_path / 'pets')


# ---------------------------------------------------------------- layout, labels, split


def test_folder_and_zip_agree(folder, tmp_path):
  zip_path = _zip(folder, tmp_path / 'pets.zip')
  a = load_image_folder(folder, cache_dir=tmp_path / 'cache')
  b = load_image_folder(zip_path, cache_dir=tmp_path / 'cache')
  assert a.name == b.name == 'pets'
  assert a.class_names == b.class_names == ('ant', 'cat', 'dog')
  assert a.image_shape == (6, 8, 3) and len(a.train) + len(a.test) == sum(COUNTS.values()) == 24
  for x, y in ((a.train, b.train), (a.test, b.test)):
    np.testing.assert_array_equal(x.images, y.images)
    np.testing.assert_array_equal(x.labels, y.labels)
    assert x.images.dtype == np.uint8 and x.labels.dtype == np.int32
    assert type(x.images) is np.ndarray  # In memory, not the cache's memmap.
    # Labels follow the sorted folder names; each split is in path order.
    np.testing.assert_array_equal(x.labels, _red_values(x) // 60)
    assert np.all(np.diff(_red_values(x)) > 0)
  assert a.info['num_images'] == 24 and a.info['num_skipped'] == 0 and a.info['skipped'] == []
  assert b.info['source'] == str(zip_path)


def test_split_is_stratified_seeded_and_covers_everything(folder, tmp_path):
  load = lambda **kw: load_image_folder(folder, cache_dir=tmp_path, validation_fraction=0.2, **kw)
  ds = load(split_seed=0)
  # round(0.2 * n) per class: 12 -> 2, 7 -> 1, 5 -> 1.
  np.testing.assert_array_equal(np.bincount(ds.test.labels, minlength=3), [1, 2, 1])
  np.testing.assert_array_equal(np.bincount(ds.train.labels, minlength=3), [6, 10, 4])
  everything = np.concatenate([_red_values(ds.train), _red_values(ds.test)])
  expected = [_red(label, i) for label, name in enumerate(sorted(COUNTS))
              for i in range(COUNTS[name])]
  np.testing.assert_allclose(np.sort(everything), expected, atol=2)  # Disjoint and complete.
  np.testing.assert_array_equal(_red_values(load(split_seed=0).test), _red_values(ds.test))
  assert not np.array_equal(_red_values(load(split_seed=1).test), _red_values(ds.test))
  empty = load_image_folder(folder, cache_dir=tmp_path, validation_fraction=0.0)
  assert empty.test.images.shape == (0, 6, 8, 3) and len(empty.train) == 24


@pytest.mark.parametrize('field, kwargs', [
    ('validation_fraction', {'validation_fraction': 1.0}),
    ('validation_fraction', {'validation_fraction': -0.1}),
    ('validation_fraction', {'validation_fraction': 0.99}),  # No training image left.
    ('split_seed', {'split_seed': -1}),
    ('bad_images', {'bad_images': 'ignore'}),
    ('image_size', {'image_size': 0}),
    ('channels', {'channels': 2}),
])
def test_bad_arguments_name_the_config_field(folder, tmp_path, field, kwargs):
  with pytest.raises(UserError, match=f'config field {field}'):
    load_image_folder(folder, cache_dir=tmp_path, **kwargs)


def test_grey_channel(folder, tmp_path):
  grey = load_image_folder(folder, cache_dir=tmp_path, channels=1, validation_fraction=0.0)
  rgb = load_image_folder(folder, cache_dir=tmp_path, validation_fraction=0.0)
  assert grey.image_shape == (6, 8, 1) and grey.info['cache'] != rgb.info['cache']
  # PIL's L = 0.299 R + 0.587 G + 0.114 B, here G = B = 0.
  np.testing.assert_allclose(grey.train.images[:, 0, 0, 0], 0.299 * _red_values(rgb.train),
                             atol=1.5)


@pytest.mark.parametrize('files, message', [
    ({'readme.txt': b'x'}, 'no images'),
    ({'a.png': None, 'cat/b.png': None}, "'a.png' sits directly in"),
    ({'cat/a.png': None, 'cat/b.png': None}, "only one class folder \\('cat'\\)"),
    ({'x/cat/a.png': None, 'dog/b.png': None}, 'common prefix'),
    ({'x/cat/a.png': None, 'y/dog/b.png': None}, 'common prefix'),
])
def test_bad_layouts(tmp_path, files, message):
  root = tmp_path / 'root'
  for rel, data in files.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data or _encode(np.zeros((4, 4, 3), np.uint8), 'PNG'))
  with pytest.raises(UserError, match=message):
    load_image_folder(root, cache_dir=tmp_path / 'cache')


def test_missing_source(tmp_path):
  with pytest.raises(UserError, match='neither a folder nor a .zip file'):
    load_image_folder(tmp_path / 'nope.zip', cache_dir=tmp_path)
  (tmp_path / 'fake.zip').write_bytes(b'not a zip')
  with pytest.raises(UserError, match="fake.zip' is not a readable zip file"):
    load_image_folder(tmp_path / 'fake.zip', cache_dir=tmp_path)


# ---------------------------------------------------------------- bad images


def _truncated_jpeg() -> bytes:
  noise = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
  data = _encode(noise, 'JPEG')
  return data[:len(data) // 2]


BAD_FILES = {'random': ('cat/005_x.jpg', np.random.default_rng(1).bytes(300)),
             'truncated': ('dog/002_cut.jpeg', _truncated_jpeg())}


@pytest.mark.parametrize('kind', sorted(BAD_FILES))
@pytest.mark.parametrize('as_zip', [False, True])
def test_bad_image_error_names_the_file(folder, tmp_path, kind, as_zip):
  rel, data = BAD_FILES[kind]
  (folder / rel).write_bytes(data)
  source = _zip(folder, tmp_path / 'pets.zip') if as_zip else folder
  shown = f'{source}:train/{rel}' if as_zip else str(folder / rel)
  with pytest.raises(UserError) as info:
    load_image_folder(source, cache_dir=tmp_path / 'cache')
  message = str(info.value)
  assert message.startswith(f'{shown!r} is not a readable image (')
  assert ('not a jpeg or png file' if kind == 'random' else 'truncated') in message.lower()
  assert 'bad_images' in message and '\n' not in message


@pytest.mark.parametrize('as_zip', [False, True])
def test_bad_images_skipped_and_counted(folder, tmp_path, caplog, as_zip):
  for rel, data in BAD_FILES.values():
    (folder / rel).write_bytes(data)
  source = _zip(folder, tmp_path / 'pets.zip') if as_zip else folder
  shown = [f'{source}:train/{rel}' if as_zip else str(folder / rel)
           for rel, _ in BAD_FILES.values()]
  with caplog.at_level(logging.WARNING):
    ds = load_image_folder(source, cache_dir=tmp_path / 'cache', bad_images='skip',
                           validation_fraction=0.0)
  assert len(ds.train) == 24 and ds.info['num_skipped'] == 2 and ds.info['skipped'] == shown
  warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert all(any(name in w for w in warned) for name in shown), warned
  again = load_image_folder(source, cache_dir=tmp_path / 'cache', bad_images='skip')
  assert again.info['from_cache'] and again.info['skipped'] == shown


def test_truncated_images_stay_detected():
  from PIL import ImageFile  # pylint: disable=g-import-not-at-top
  assert ImageFile.LOAD_TRUNCATED_IMAGES is False
  with pytest.raises(OSError):
    image_folder._decode_image(_truncated_jpeg(), 3, None)


# ---------------------------------------------------------------- sizes


def test_mixed_sizes_need_image_size(folder, tmp_path):
  odd = np.zeros((10, 8, 3), np.uint8)
  (folder / 'dog' / '001.png').write_bytes(_encode(odd, 'PNG'))
  with pytest.raises(UserError) as info:
    load_image_folder(folder, cache_dir=tmp_path)
  assert str(info.value).startswith(f'{str(folder / "dog" / "001.png")!r} is 8x10 pixels but '
                                    f'{str(folder / "ant" / "000.png")!r} is 8x6; set config '
                                    'field image_size')
  ds = load_image_folder(folder, cache_dir=tmp_path, image_size=4, validation_fraction=0.0)
  assert ds.image_shape == (4, 4, 3) and len(ds.train) == 24


def _wide_test_image() -> np.ndarray:
  """uint8 [20, 40, 3]: red left quarter, blue right quarter, green centre with a white 10x10."""
  pixels = np.zeros((20, 40, 3), np.uint8)
  pixels[:, :10] = (255, 0, 0)
  pixels[:, 30:] = (0, 0, 255)
  pixels[:, 10:30] = (0, 200, 0)
  pixels[5:15, 15:25] = 255
  return pixels


def test_resize_and_center_crop():
  image = Image.fromarray(_wide_test_image())
  # Shorter side already 20: a pure crop of the centre 20 x 20.
  np.testing.assert_array_equal(np.asarray(images_lib.resize_and_center_crop(image, 20)),
                                _wide_test_image()[:, 10:30])
  half = np.asarray(images_lib.resize_and_center_crop(image, 10)).astype(int)
  assert half.shape == (10, 10, 3)
  assert half[3:7, 3:7].min() >= 240  # The white centre.
  np.testing.assert_allclose(half[0, 2:8], [[0, 200, 0]] * 6, atol=8)  # Green (LANCZOS rings).
  assert half[:, 0, 0].max() < 40 and half[:, 9, 2].max() < 40  # Red and blue barely bleed in.
  tall = images_lib.resize_and_center_crop(image.transpose(Image.Transpose.TRANSPOSE), 10)
  np.testing.assert_array_equal(np.asarray(tall), half.transpose(1, 0, 2))
  assert images_lib.resize_and_center_crop(image, 64).size == (64, 64)


def test_loader_applies_resize_and_center_crop(tmp_path):
  root = tmp_path / 'wide'
  for name in ('a', 'b'):
    (root / name).mkdir(parents=True)
    (root / name / 'x.png').write_bytes(_encode(_wide_test_image(), 'PNG'))
  ds = load_image_folder(root, cache_dir=tmp_path, image_size=10, validation_fraction=0.0)
  expected = np.asarray(images_lib.resize_and_center_crop(Image.fromarray(_wide_test_image()), 10))
  np.testing.assert_array_equal(ds.train.images, [expected, expected])


# ---------------------------------------------------------------- cache


def _forbid_decoding(monkeypatch):
  def fail(*args):
    raise AssertionError('decoded although the cache should have been used')
  monkeypatch.setattr(image_folder, '_decode_image', fail)


def test_cache_root_precedence(tmp_path, monkeypatch):
  assert image_cache.cache_root(tmp_path / 'given') == str(tmp_path / 'given')
  assert image_cache.cache_root() == str(tmp_path / 'env_cache')
  monkeypatch.delenv('MLFUN_CACHE_DIR')
  assert image_cache.cache_root() == os.path.expanduser('~/.cache/mlfun_jax')


@pytest.mark.parametrize('as_zip', [False, True])
def test_second_load_uses_the_cache_until_the_source_changes(folder, tmp_path, monkeypatch,
                                                             as_zip):
  source = _zip(folder, tmp_path / 'pets.zip') if as_zip else folder
  cache = tmp_path / 'cache'
  first = load_image_folder(source, cache_dir=cache, validation_fraction=0.2)
  assert not first.info['from_cache']
  assert sorted(os.listdir(first.info['cache'])) == ['images.npy', 'info.json', 'labels.npy']
  assert os.listdir(cache / 'image_folder') == [os.path.basename(first.info['cache'])]  # No temps.

  with monkeypatch.context() as patch:
    _forbid_decoding(patch)
    second = load_image_folder(source, cache_dir=cache, validation_fraction=0.2)
    assert second.info['from_cache'] and second.info['cache'] == first.info['cache']
    np.testing.assert_array_equal(second.train.images, first.train.images)
    np.testing.assert_array_equal(second.test.labels, first.test.labels)
    other = load_image_folder(source, cache_dir=cache, validation_fraction=0.5, split_seed=3)
    assert other.info['from_cache'] and len(other.test) == 4 + 6 + 2  # round(3.5), 6, round(2.5)

  pixels = np.zeros((6, 8, 3), np.uint8)
  pixels[..., 0] = 250
  (folder / 'ant' / '000.png').write_bytes(_encode(pixels, 'PNG'))
  if as_zip:
    _zip(folder, source)
  changed = load_image_folder(source, cache_dir=cache, validation_fraction=0.0)
  assert not changed.info['from_cache'] and changed.info['cache'] != first.info['cache']
  assert changed.train.images[0, 0, 0, 0] == 250


@pytest.mark.parametrize('damage', ['truncate images.npy', 'delete labels.npy', 'bad info.json',
                                    'wrong shape'])
def test_damaged_cache_is_rebuilt(folder, tmp_path, caplog, damage):
  first = load_image_folder(folder, cache_dir=tmp_path, validation_fraction=0.0)
  cache = pathlib.Path(first.info['cache'])
  if damage == 'truncate images.npy':
    with open(cache / 'images.npy', 'r+b') as f:
      f.truncate((cache / 'images.npy').stat().st_size // 2)
  elif damage == 'delete labels.npy':
    (cache / 'labels.npy').unlink()
  elif damage == 'bad info.json':
    (cache / 'info.json').write_text('{"key": ')
  else:
    np.save(cache / 'labels.npy', np.zeros(3, np.int32))
  with caplog.at_level(logging.WARNING):
    rebuilt = load_image_folder(folder, cache_dir=tmp_path, validation_fraction=0.0)
  assert not rebuilt.info['from_cache']
  assert any('Rebuilding the damaged image cache' in r.getMessage() for r in caplog.records)
  np.testing.assert_array_equal(rebuilt.train.images, first.train.images)
  np.testing.assert_array_equal(rebuilt.train.labels, first.train.labels)
  assert load_image_folder(folder, cache_dir=tmp_path).info['from_cache']


# ---------------------------------------------------------------- registry


def test_registry_image_folder_name(folder, tmp_path):
  zip_path = _zip(folder, tmp_path / 'pets.zip')
  for data_dir in (folder, zip_path):
    ds = load_image_dataset('image_folder', data_dir, cache_dir=tmp_path / 'cache',
                            validation_fraction=0.25, split_seed=2)
    assert ds.name == 'image_folder' and ds.class_names == ('ant', 'cat', 'dog')
    np.testing.assert_array_equal(np.bincount(ds.test.labels), [2, 3, 1])  # round(1.75, 3, 1.25)
  with pytest.raises(UserError, match='config field data_dir'):
    load_image_dataset('image_folder')
  grey = load_image_dataset('image_folder', folder, channels=1, cache_dir=tmp_path / 'cache',
                            validation_fraction=0.25, split_seed=2)
  assert grey.image_shape[-1] == 1 and grey.train.images.shape[0] == ds.train.images.shape[0]


@pytest.mark.parametrize('layout', ['name/train.zip', 'name.zip', 'train.zip', 'name/', 'root'])
def test_registry_finds_a_named_image_folder(folder, tmp_path, layout):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  if layout == 'name/':
    folder.rename(data_dir / 'pets')
  elif layout == 'root':
    data_dir.rmdir()
    folder.rename(data_dir)
  else:
    target = data_dir / layout.replace('name', 'pets')
    target.parent.mkdir(exist_ok=True)
    _zip(folder, target)
  ds = load_image_dataset('pets', data_dir, cache_dir=tmp_path / 'cache', image_size=4,
                          validation_fraction=0.0, bad_images='skip')
  assert ds.name == 'pets' and ds.class_names == ('ant', 'cat', 'dog')
  assert ds.train.images.shape == (24, 4, 4, 3)


def test_has_class_folders_looks_two_or_three_levels_deep(tmp_path):
  png = _encode(np.zeros((2, 2, 3), np.uint8), 'PNG')
  for rel, expected in (('a.png', False), ('cat/a.png', True), ('train/cat/a.png', True),
                        ('downloads/extracted/cat/a.png', False), ('.cache/cat/a.png', False)):
    root = tmp_path / rel.replace('/', '_')
    (root / rel).parent.mkdir(parents=True)
    (root / rel).write_bytes(png)
    assert image_folder.has_class_folders(str(root)) == expected, rel


def test_registry_data_dir_errors(tmp_path):
  (tmp_path / 'notes.txt').write_text('x')
  with pytest.raises(UserError, match=r"notes.txt' is a file but not a .zip .*field data_dir"):
    load_image_dataset('pets', tmp_path / 'notes.txt')
  with pytest.raises(UserError, match=r"does not exist \(config field data_dir\)"):
    load_image_dataset('pets', tmp_path / 'missing.zip')


# ---------------------------------------------------------------- real CIFAR-10


@pytest.fixture(scope='session')
def cifar_cache(tmp_path_factory):
  return tmp_path_factory.mktemp('cifar_cache')


def test_cifar10_from_shared_zip(shared_data_dir, cifar_cache):
  first = load_image_dataset('cifar10', shared_data_dir, cache_dir=cifar_cache)
  zip_path = shared_data_dir / 'cifar10' / 'train.zip'
  assert first.info['source'] == str(zip_path.absolute())
  again = load_image_dataset('cifar10', zip_path, cache_dir=cifar_cache)
  assert again.info['from_cache']
  for ds in (first, again):
    assert (len(ds.train), len(ds.test)) == (45000, 5000)
    assert ds.image_shape == (32, 32, 3) and ds.class_names == CIFAR_CLASSES
    np.testing.assert_array_equal(np.bincount(ds.test.labels), [500] * 10)
    np.testing.assert_array_equal(np.bincount(ds.train.labels), [4500] * 10)
  np.testing.assert_array_equal(first.test.images, again.test.images)
  means = first.train.images.reshape(-1, 3).mean(axis=0) / 255
  np.testing.assert_allclose(means, [0.491, 0.482, 0.447], atol=0.01)
