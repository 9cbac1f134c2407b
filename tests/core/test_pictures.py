"""Pictures: grid geometry and pixel placement, lattice layout, PNG round trips, scatter plots."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mlfun_jax.core import pictures
from tests.conftest import REPO_ROOT


def _numbered_tiles(n, h=3, w=4, c=1):
  """uint8 [n, h, w, c]: tile i is filled with the value 10 * (i + 1)."""
  return np.broadcast_to((10 * np.arange(1, n + 1, dtype=np.uint8))[:, None, None, None],
                         (n, h, w, c)).copy()


def _tile_at(grid, row, column, h, w, pad):
  top, left = pad + row * (h + pad), pad + column * (w + pad)
  return grid[top:top + h, left:left + w]


def test_to_uint8():
  floats = np.array([[-0.5, 0.0, 0.5], [1.0, 2.0, np.nan]], np.float32)
  np.testing.assert_array_equal(pictures.to_uint8(floats), [[0, 0, 128], [255, 255, 0]])
  u8 = np.arange(6, dtype=np.uint8).reshape(2, 3)
  np.testing.assert_array_equal(pictures.to_uint8(u8), u8)
  with pytest.raises(ValueError):
    pictures.to_uint8(np.zeros(3, np.int32))


@pytest.mark.parametrize('n, columns, pad, scale, c', [
    (1, 1, 0, 1, 1), (7, 3, 2, 1, 1), (6, 3, 1, 2, 3), (10, 4, 3, 3, 3), (2, 5, 2, 1, 1)])
def test_grid_shape_and_pixel_placement(n, columns, pad, scale, c):
  h, w = 3, 4
  grid = pictures.image_grid(_numbered_tiles(n, h, w, c), columns, pad=pad, pad_value=7,
                             scale=scale)
  rows = -(-n // columns)
  sh, sw = h * scale, w * scale
  assert grid.dtype == np.uint8
  assert grid.shape == (rows * (sh + pad) + pad, columns * (sw + pad) + pad, c)
  for i in range(rows * columns):
    expected = 10 * (i + 1) if i < n else 7  # Missing tiles at the end are pad_value.
    tile = _tile_at(grid, i // columns, i % columns, sh, sw, pad)
    assert (tile == expected).all(), (i, np.unique(tile))
  # Everything outside the tiles is padding.
  mask = np.ones(grid.shape[:2], bool)
  for i in range(rows * columns):
    top, left = pad + (i // columns) * (sh + pad), pad + (i % columns) * (sw + pad)
    mask[top:top + sh, left:left + sw] = False
  assert (grid[mask] == 7).all()


def test_grid_scale_is_nearest_neighbour_and_floats_convert():
  image = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)[None, :, :, None]
  grid = pictures.image_grid(image, columns=1, pad=0, scale=2)
  np.testing.assert_array_equal(
      grid[..., 0], [[0, 0, 255, 255], [0, 0, 255, 255], [128, 128, 64, 64], [128, 128, 64, 64]])


def test_grid_rejects_bad_shapes():
  for bad in (np.zeros((3, 4, 4), np.uint8), np.zeros((3, 4, 4, 2), np.uint8),
              np.zeros((0, 4, 4, 1), np.uint8)):
    with pytest.raises(ValueError):
      pictures.image_grid(bad, columns=2)


@pytest.mark.parametrize('n, columns', [(6, 3), (7, 3), (2, 4)])
def test_reconstruction_grid_puts_each_input_above_its_output(n, columns):
  h, w, pad = 3, 4, 2
  inputs = _numbered_tiles(n, h, w)
  outputs = (inputs.astype(np.float32) + 5) / 255  # Floats may be mixed with uint8.
  grid = pictures.reconstruction_grid(inputs, outputs, columns, pad=pad, pad_value=1)
  rows = -(-n // columns)
  assert grid.shape == (2 * rows * (h + pad) + pad, columns * (w + pad) + pad, 1)
  for i in range(rows * columns):
    r, col = divmod(i, columns)
    above = _tile_at(grid, 2 * r, col, h, w, pad)
    below = _tile_at(grid, 2 * r + 1, col, h, w, pad)
    if i < n:
      assert (above == 10 * (i + 1)).all() and (below == 10 * (i + 1) + 5).all(), i
    else:
      assert (above == 1).all() and (below == 1).all(), i
  with pytest.raises(ValueError):
    pictures.reconstruction_grid(inputs, inputs[:-1], columns)


def test_lattice_orientation():
  n = 4
  codes = pictures.lattice_codes(-2.0, 2.0, n)
  assert codes.shape == (n * n, 2) and codes.dtype == np.float32
  grid = codes.reshape(n, n, 2)  # As tiled by image_grid(columns=n): [row, column].
  np.testing.assert_allclose(grid[0, :, 1], 2.0)  # First row: highest code 2.
  np.testing.assert_allclose(grid[-1, :, 1], -2.0)
  np.testing.assert_allclose(grid[:, 0, 0], -2.0)  # First column: lowest code 1.
  np.testing.assert_allclose(grid[0, :, 0], np.linspace(-2, 2, n))  # Code 1 rises to the right.
  np.testing.assert_allclose(grid[:, 0, 1], np.linspace(2, -2, n))  # Code 2 rises to the top.
  np.testing.assert_allclose(pictures.lattice_codes(0.0, 1.0, 1), [[0.0, 0.0]])


def test_gaussian_lattice():
  n = 5
  codes = pictures.gaussian_lattice(n, margin=0.05)
  assert codes.shape == (n * n, 2) and codes.dtype == np.float32
  grid = codes.reshape(n, n, 2)
  values = grid[0, :, 0]
  assert np.all(np.diff(values) > 0)
  np.testing.assert_allclose(values, -values[::-1], atol=1e-6)  # Symmetric around 0.
  np.testing.assert_allclose(values[0], -1.6448536, rtol=1e-5)  # Φ⁻¹(0.05).
  np.testing.assert_allclose(grid[:, 0, 1], values[::-1])  # Row 0 has the highest code 2.
  np.testing.assert_allclose(codes.mean(axis=0), 0.0, atol=1e-6)
  with pytest.raises(ValueError):
    pictures.gaussian_lattice(3, margin=0.0)


@pytest.mark.parametrize('shape', [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_save_png_round_trip(tmp_path: pathlib.Path, shape):
  image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  path = tmp_path / 'new' / 'folder' / 'image.png'
  assert pictures.save_png(image, path) == str(path)
  with Image.open(path) as loaded:
    assert loaded.format == 'PNG'
    assert loaded.mode == ('RGB' if shape[-1] == 3 else 'L')
    expected = image if shape[-1] == 3 else image.reshape(5, 7)
    np.testing.assert_array_equal(np.asarray(loaded), expected)
  assert os.listdir(path.parent) == ['image.png']  # No .tmp file left behind.


def test_save_png_rejects_floats_and_bad_shapes(tmp_path: pathlib.Path):
  for bad in (np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8),
              np.zeros((2, 4, 4, 3), np.uint8), np.zeros(4, np.uint8)):
    with pytest.raises(ValueError):
      pictures.save_png(bad, tmp_path / 'bad.png')
  assert not os.listdir(tmp_path)


def test_scatter_codes_writes_a_coloured_png(tmp_path: pathlib.Path):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 3000)
  codes = rng.normal(size=(3000, 2)) * 0.3 + np.stack([np.cos(labels), np.sin(labels)], 1) * 2
  path = tmp_path / 'plots' / 'codes.png'
  names = [f'digit {k}' for k in range(10)]
  assert pictures.scatter_codes(codes, labels, names, path, title='latent codes',
                                max_points=2000) == str(path)
  assert os.listdir(path.parent) == ['codes.png']
  with Image.open(path) as loaded:
    assert loaded.format == 'PNG'
    assert abs(loaded.size[0] - 700) <= 10 and abs(loaded.size[1] - 600) <= 10
    pixels = np.asarray(loaded.convert('RGB'))
  assert pixels.std() > 10
  colours = np.unique(pixels.reshape(-1, 3), axis=0)
  assert len(colours) > 5
  # All ten tab10 colours appear (exact pixels at marker centres or legend markers).
  tab10 = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                    [188, 189, 34], [23, 190, 207]])
  present = (np.abs(colours[:, None, :].astype(int) - tab10[None]).max(-1) <= 2).any(0)
  assert present.all(), present


def test_scatter_codes_more_classes_than_colours_and_unnamed_labels(tmp_path: pathlib.Path):
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 14, 500)
  path = pictures.scatter_codes(rng.normal(size=(500, 2)), labels, ['a', 'b'], tmp_path / 'x.png')
  with Image.open(path) as loaded:
    assert np.asarray(loaded.convert('RGB')).std() > 10


def test_scatter_codes_rejects_bad_shapes(tmp_path: pathlib.Path):
  for codes in (np.zeros((10, 3)), np.zeros(10), np.zeros((10, 2, 1))):
    with pytest.raises(ValueError):
      pictures.scatter_codes(codes, np.zeros(10, int), ['a'], tmp_path / 'bad.png')
  with pytest.raises(ValueError):
    pictures.scatter_codes(np.zeros((10, 2)), np.zeros(9, int), ['a'], tmp_path / 'bad.png')
  assert not os.listdir(tmp_path)


def test_import_is_cheap_and_leaves_the_matplotlib_backend_alone():
  script = ('import sys, mlfun_jax.core.pictures as p\n'
            'assert "matplotlib" not in sys.modules and "scipy" not in sys.modules\n'
            'import matplotlib\n'
            'matplotlib.use("svg")\n'
            'import numpy as np, tempfile, os\n'
            'p.scatter_codes(np.zeros((3, 2)), np.arange(3), "abc",\n'
            '                os.path.join(tempfile.mkdtemp(), "a.png"))\n'
            'print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)\n')
  process = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=False, timeout=60)
  assert process.returncode == 0, process.stderr
  assert process.stdout.split() == ['svg', 'False']
