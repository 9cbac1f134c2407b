"""The datasets the experiment configs read: where the data folder is, what each dataset's folder
holds, where it comes from, and the one-line error naming the command that fetches it.

The data folder is `default_data_dir()`: $MLFUN_DATA_DIR, else ~/mlfun_jax_data. Each dataset
lives in its own sub-folder (`SOURCES[name].folder`); `mlfun-data fetch NAME` (mlfun_jax.data.fetch)
downloads and prepares it there, `mlfun-data list` shows them all. No network is touched here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.parse

from mlfun_jax.core.errors import UserError

ENV_VAR = 'MLFUN_DATA_DIR'
HOME_FOLDER = 'mlfun_jax_data'
FETCH_COMMAND = 'mlfun-data fetch'


def default_data_dir() -> str:
  """The data folder: $MLFUN_DATA_DIR (with ~ expanded), else ~/mlfun_jax_data."""
  env = os.environ.get(ENV_VAR)
  if env:
    return os.path.expanduser(env)
  return os.path.join(os.path.expanduser('~'), HOME_FOLDER)


@dataclasses.dataclass(frozen=True)
class Download:
  """One file to download: its path under the source's base URL and its checksums (None: the
  source publishes none)."""
  path: str
  sha256: str | None = None
  md5: str | None = None
  target: str = ''  # Where it goes in the prepared folder, for files kept as they are.


@dataclasses.dataclass(frozen=True)
class Source:
  """A dataset the configs read.

  Attributes:
    name: what `mlfun-data fetch` takes, also the folder's name under the data folder.
    title: one line saying what it is.
    base_url: the downloads' base URL; the environment variable `url_env` overrides it (a mirror,
      or a local server in tests).
    downloads: the files fetched from base_url.
    licence: the licence or credit the source states.
    layout: the prepared folder's files.
    size: about how much the prepared folder takes.
    markers: files (relative to the folder) that must all exist for the dataset to count as present.
    reference_sha256: `content_digest` of the `reference_files` of the copy the documented results
      were measured on; a fetch that prepares other contents says so (None: not recorded).
    reference_files: (prefix, suffix) of the relative paths the reference digest covers.
    note: what the preparation changes or leaves out.
  """
  name: str
  title: str
  base_url: str
  downloads: tuple[Download, ...]
  licence: str
  layout: str
  size: str
  markers: tuple[str, ...]
  reference_sha256: str | None = None
  reference_files: tuple[str, str] = ('', '')
  note: str = ''

  @property
  def folder(self) -> str:
    return self.name

  @property
  def url_env(self) -> str:
    """'MLFUN_DATA_URL_FSDD': the environment variable that overrides base_url."""
    return 'MLFUN_DATA_URL_' + self.name.upper()

  def base(self) -> str:
    return os.environ.get(self.url_env) or self.base_url

  def urls(self, base: str | None = None) -> list[str]:
    base = (base or self.base()).rstrip('/')
    return [f'{base}/{d.path}' for d in self.downloads]


# The VGLC levels at a fixed commit (the copy the documented results used), file by file: the
# repository's archive holds every game (large files too), these 26 files are 100 kB.
_VGLC_COMMIT = '0e86a8f31f20ecad4eaa5741ff061af88767f7fb'
_VGLC_FILES = (  # (path in the repository, path in the folder, sha256)
    ('Super Mario Bros/Processed/mario-1-1.txt', 'smb/mario-1-1.txt',
     'a04d56ae583819ebb39d2205b7322683eabaa2dd4b8b99960ee4243d43de4ac8'),
    ('Super Mario Bros/Processed/mario-1-2.txt', 'smb/mario-1-2.txt',
     '452cc0dacb4f7d694056f7eaaaa92c5c5ad9b01b257dd1d73bb8465f34d80b31'),
    ('Super Mario Bros/Processed/mario-1-3.txt', 'smb/mario-1-3.txt',
     '196f261f587af31bf2d368770821a1c8c6d398c54054323dec75dba8445d79d4'),
    ('Super Mario Bros/Processed/mario-2-1.txt', 'smb/mario-2-1.txt',
     '46b6c852051882baed2e0168e333211d7846c002373d03c3673d3301c00ec3a2'),
    ('Super Mario Bros/Processed/mario-3-1.txt', 'smb/mario-3-1.txt',
     '83375e929561ff0d82b70c50b7dba81de0ab4a550c04244c883d1226b82d68a2'),
    ('Super Mario Bros/Processed/mario-3-3.txt', 'smb/mario-3-3.txt',
     '6f66abf4ba83b4c20aba85702c0404b7aea83d54b650cc067e0f88e5d313a1f8'),
    ('Super Mario Bros/Processed/mario-4-1.txt', 'smb/mario-4-1.txt',
     'f944d7c2e48d2fe07ed0928929fa0440f4d51b9c2f46140a3fbd8416b376bdfe'),
    ('Super Mario Bros/Processed/mario-4-2.txt', 'smb/mario-4-2.txt',
     'd64e001ff96560c99790e39bf4dc6f89c32f2ba70997c73546af12e829338839'),
    ('Super Mario Bros/Processed/mario-5-1.txt', 'smb/mario-5-1.txt',
     'c3e1a89123f87f5e85307e5a90281dd6029a2c110f2beb96d471393e3caf37a2'),
    ('Super Mario Bros/Processed/mario-5-3.txt', 'smb/mario-5-3.txt',
     'ef95a313c041ec54a120d75fc99f0f1372bc8e7666fa3fd1742ac3cc4d600538'),
    ('Super Mario Bros/Processed/mario-6-1.txt', 'smb/mario-6-1.txt',
     'a182dc73ec03c9bd4d608824d89fc65c34f05783572f075b9b13c573496ba008'),
    ('Super Mario Bros/Processed/mario-6-2.txt', 'smb/mario-6-2.txt',
     '2ddf7c1cf3b79048e40e98c0131b39ebacccaf6b4a50b0128b2d22f91f61693c'),
    ('Super Mario Bros/Processed/mario-6-3.txt', 'smb/mario-6-3.txt',
     '316814e64fa2f95b3e6b2dce2eb698672ff9ede3b756c284edbb96e10b60b46a'),
    ('Super Mario Bros/Processed/mario-7-1.txt', 'smb/mario-7-1.txt',
     '4a10eb8eb5651a5064cc36f61b9daec0240d3e646897acddbb28b99856bb9dd9'),
    ('Super Mario Bros/Processed/mario-8-1.txt', 'smb/mario-8-1.txt',
     '5cedb7f364e980d04552a1ebfad122709e528273b7506d8bae84a380d09e7b85'),
    ('Super Mario Bros/smb.json', 'smb/smb.json',
     'c1a23d7af82c7cdf0364cd1a1d6fcb4ada14092b0f383ffc7edc0e7f10987dcf'),
    ('Super Mario Land/Processed/super_mario_land_11.png.txt', 'sml/super_mario_land_11.txt',
     '4631d62b3530141dcf7b91b9a4a02afe275123581a395a80c171a9bfcad7d888'),
    ('Super Mario Land/Processed/super_mario_land_12.png.txt', 'sml/super_mario_land_12.txt',
     '334e7f187df636c9d470c5ab5e530d0fcca8f5432cd75145bbc328eec09ed860'),
    ('Super Mario Land/Processed/super_mario_land_13.png.txt', 'sml/super_mario_land_13.txt',
     'd691e6419bb0b9d19c5999a8aaa40737c7e4c97aef04689c62717c4e976f4ffa'),
    ('Super Mario Land/Processed/super_mario_land_21.png.txt', 'sml/super_mario_land_21.txt',
     'cc739a21b6f1fdc7f226505c1fb2907092c27f70ccae42372d9054063ad9fb63'),
    ('Super Mario Land/Processed/super_mario_land_22.png.txt', 'sml/super_mario_land_22.txt',
     '6c43db3bc76d2737b37dd9f80a668e0f21a0bcef3a5f27ac04fa6cd26da258a4'),
    ('Super Mario Land/Processed/super_mario_land_31.png.txt', 'sml/super_mario_land_31.txt',
     '8e6f631f9ed5d3dd9e992ac5d4c3efdca6023904449e2f9b501f0ea24239ed00'),
    ('Super Mario Land/Processed/super_mario_land_32.png.txt', 'sml/super_mario_land_32.txt',
     '7c21bd4a2374fe44e50a2e22480439976326a0f52fa6f4a8f8fc314ed83ac42a'),
    ('Super Mario Land/Processed/super_mario_land_33.png.txt', 'sml/super_mario_land_33.txt',
     'fa599652924e7100b2ae3d30c5621ac1fdd6170516f2d1912cdba6002b51b0b1'),
    ('Super Mario Land/Processed/super_mario_land_42.png.txt', 'sml/super_mario_land_42.txt',
     'cae1d874d2eda455b5d4b5235912485f3227c39b2c2dc50f3385cc5d1f074be9'),
    ('License.md', 'License.md',
     '03163a24efa8c8c567e8ad17da22e5f2cd1903e1363defc4121c92aa26e0c33f'),
)

SOURCES: dict[str, Source] = {}


def _register(source: Source) -> None:
  SOURCES[source.name] = source


_register(Source(
    name='mnist',
    title='MNIST: 60,000 training and 10,000 test digits, 28x28 grey (IDX files)',
    base_url='https://ossci-datasets.s3.amazonaws.com/mnist',
    downloads=(
        Download('train-images-idx3-ubyte.gz',
                 sha256='440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609'),
        Download('train-labels-idx1-ubyte.gz',
                 sha256='3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c'),
        Download('t10k-images-idx3-ubyte.gz',
                 sha256='8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6'),
        Download('t10k-labels-idx1-ubyte.gz',
                 sha256='f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6'),
    ),
    licence='LeCun, Cortes and Burges; CC BY-SA 3.0 (as listed by TFDS)',
    layout='train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
           't10k-labels-idx1-ubyte.gz (as downloaded)',
    size='11 MB',
    markers=('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
             't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
))

_register(Source(
    name='cifar10',
    title='CIFAR-10 training set: 50,000 photos 32x32 RGB, 5,000 per class',
    base_url='https://www.cs.toronto.edu/~kriz',
    downloads=(Download('cifar-10-binary.tar.gz',
                        sha256='c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd',
                        md5='c32a1d4ab5d03f1284b67883e8d87530'),),
    licence='Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images" (cite it)',
    layout='train.zip (stored): train/<class>/NNNN.png, NNNN counting each class in file order',
    size='120 MB (download 170 MB)',
    markers=('train.zip',),
    note='lossless PNGs of the official arrays; the documented results were measured on JPEG '
         'copies (quality ~75), so numbers may differ slightly; the 10,000 test images are not '
         'kept (the configs split their validation set off train.zip)',
))

_register(Source(
    name='fsdd',
    title='Free Spoken Digit Dataset v1.0.10: digits 0-9 spoken by george, jackson, lucas, '
          'nicolas and theo, 50 takes each, 8 kHz mono wav',
    base_url='https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags',
    downloads=(Download('v1.0.10.tar.gz'),),
    licence='CC BY-SA 4.0 (README.md)',
    layout='recordings/{digit}_{speaker}_{take}.wav, speakers.json, README.md',
    size='18 MB (download 16 MB)',
    markers=('recordings/0_theo_0.wav', 'recordings/9_george_49.wav'),
    reference_sha256='bfe25cb8a34b6fbe14ff10766f280df3778b097e4486583c8ad6905c10230ba0',
    reference_files=('recordings/', '.wav'),
    note="the 6th speaker (yweweler) is left out, as in the documented results",
))

_register(Source(
    name='faces_orl',
    title='AT&T (ORL) faces: people s1-s30, 10 grey 92x112 images each',
    base_url='https://www.cl.cam.ac.uk/research/dtg/attarchive/pub/data',
    downloads=(Download('att_faces.zip'),),
    licence='Olivetti Research Laboratory / AT&T Laboratories Cambridge (credit them, see README)',
    layout='s<N>/<1..10>.pgm (binary PGM), README',
    size='3.2 MB (download about 4 MB)',
    markers=('s1/1.pgm', 's30/10.pgm'),
    reference_sha256='17a06909100ab8b2efe45a433a93899b9195641845bfbf6487a334049633c01c',
    reference_files=('s', '.pgm'),
    note='people s31-s40 are left out, as in the documented results (30 people)',
))

_register(Source(
    name='vglc_mario',
    title='Video Game Level Corpus: Super Mario Bros (15 levels) and Super Mario Land (9 levels)',
    base_url=f'https://raw.githubusercontent.com/TheVGLC/TheVGLC/{_VGLC_COMMIT}',
    downloads=tuple(Download(urllib.parse.quote(path), sha256=sha256, target=target)
                    for path, target, sha256 in _VGLC_FILES),
    licence='MIT (License.md); Summerville, Ontanon and Snodgrass',
    layout='smb/mario-<world>-<level>.txt, smb/smb.json (tile legend), '
           'sml/super_mario_land_<NN>.txt, License.md',
    size='100 kB',
    markers=('smb/mario-1-1.txt', 'smb/smb.json', 'sml/super_mario_land_11.txt'),
))

_register(Source(
    name='translation_eng_spa',
    title='Tatoeba English-Spanish sentence pairs (manythings.org, 2018-05-13): 118,964 pairs',
    base_url='https://storage.googleapis.com/download.tensorflow.org/data',
    downloads=(Download('spa-eng.zip'),),
    licence='CC BY 2.0 France (_about.txt); credit tatoeba.org and manythings.org/anki',
    layout='spa.txt (English<TAB>Spanish per line), _about.txt',
    size='8 MB (download 2.6 MB)',
    markers=('spa.txt',),
    reference_sha256='d7f7a628a6af22abdea29d987678939238040e72d65b3392e06ba11af82e37aa',
    reference_files=('spa.txt', ''),
))


class DatasetMissing(UserError):
  """A dataset the configuration needs is not in its folder; the message names the command that
  fetches it."""


def dataset_dir(name: str, data_dir: str | os.PathLike[str] | None = None) -> str:
  """The folder of dataset `name` under data_dir (None: `default_data_dir()`)."""
  return os.path.join(os.path.expanduser(os.fspath(data_dir)) if data_dir is not None
                      else default_data_dir(), SOURCES[name].folder)


def is_present(name: str, data_dir: str | os.PathLike[str] | None = None) -> bool:
  """True when every marker file of dataset `name` exists in its folder."""
  folder = dataset_dir(name, data_dir)
  return all(os.path.isfile(os.path.join(folder, m)) for m in SOURCES[name].markers)


def fetch_command(name: str, data_dir: str | os.PathLike[str] | None = None) -> str:
  """'mlfun-data fetch fsdd', with --data_dir=DIR when data_dir is not the default folder."""
  command = f'{FETCH_COMMAND} {name}'
  if data_dir is not None:
    given = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if given != os.path.abspath(default_data_dir()):
      command += f' --data_dir={os.fspath(data_dir)}'
  return command


def missing(name: str, data_dir: str | os.PathLike[str] | None = None,
            where: str | None = None) -> DatasetMissing:
  """"dataset 'fsdd' not found in DIR/fsdd; fetch it with: mlfun-data fetch fsdd" (where: the
  path looked at, default the dataset's folder)."""
  where = where or dataset_dir(name, data_dir)
  return DatasetMissing(f'dataset {name!r} not found in {where}; fetch it with: '
                        f'{fetch_command(name, data_dir)}')


def missing_for_path(path: str | os.PathLike[str]) -> DatasetMissing | None:
  """For a path that does not exist inside a dataset's folder (<data_dir>/<name>[/...], e.g. a
  config's data_path .../translation_eng_spa/spa.txt): the `missing` error of that dataset, as long
  as the dataset itself is not present; None for any other path."""
  path = os.path.abspath(os.path.expanduser(os.fspath(path)))
  parts = path.split(os.sep)
  for i in range(len(parts) - 1, 0, -1):
    if parts[i] in SOURCES:
      data_dir = os.sep.join(parts[:i]) or os.sep
      if is_present(parts[i], data_dir):
        return None
      return missing(parts[i], data_dir, where=path)
  return None


def file_sha256(path: str, algorithm: str = 'sha256') -> str:
  digest = hashlib.new(algorithm)
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def content_digest(folder: str, prefix: str = '', suffix: str = '') -> str:
  """sha256 of the lines '<relative path>\\t<sha256 of the file>\\n' of the files under `folder`
  whose '/'-separated relative path starts with prefix and ends with suffix, in path order."""
  lines = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, '/')
      if rel.startswith(prefix) and rel.endswith(suffix):
        lines.append(f'{rel}\t{file_sha256(os.path.join(root, name))}\n')
  return hashlib.sha256(''.join(sorted(lines)).encode()).hexdigest()
