"""The launchers in launch/: tpu_vm.sh's dry run (no gcloud, no network) and the usage errors."""

import os
import pathlib
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT

CONFIG = 'experiments/configs/cnn_mnist.py'
IN_GIT_CHECKOUT = (REPO_ROOT / '.git').exists()


@pytest.fixture(name='fake_gcloud')
def fake_gcloud_fixture(tmp_path) -> tuple[dict[str, str], pathlib.Path]:
  """An environment whose first `gcloud` on PATH only leaves a marker file; and that marker's path."""
  marker = tmp_path / 'gcloud_was_called'
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  gcloud = bin_dir / 'gcloud'
  gcloud.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(marker))}\n')
  gcloud.chmod(0o755)
  env = {**os.environ, 'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'}
  assert shutil.which('gcloud', path=env['PATH']) == str(gcloud)
  return env, marker


def run_script(script: str, *args: str, env: dict[str, str] | None = None):
  return subprocess.run(['bash', f'launch/{script}', *args], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=30, check=False)


def printed_commands(process) -> list[list[str]]:
  """The '+ ' lines of a dry run, each split into its words as a shell would."""
  return [shlex.split(line[2:]) for line in process.stdout.splitlines() if line.startswith('+ ')]


def flag(argv: list[str], name: str) -> str:
  """The value of `--name=value` in argv."""
  values = [word.split('=', 1)[1] for word in argv if word.startswith(f'--{name}=')]
  assert len(values) == 1, argv
  return values[0]


def assert_one_error_line(process, *fragments: str) -> None:
  assert process.returncode == 2, process.stderr
  lines = process.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), process.stderr
  for fragment in fragments:
    assert fragment in lines[0]
  assert '+ ' not in process.stdout


@pytest.mark.skipif(not IN_GIT_CHECKOUT, reason='--install=copy ships the git HEAD')
@pytest.mark.parametrize(
    'accelerator, expected_type, expected_version, workdir_flags, expected_workdir',
    [('v4-8', 'v4-8', 'tpu-ubuntu2204-base', [], 'workdirs/cnn_mnist'),
     ('v5e-8', 'v5litepod-8', 'v2-alpha-tpuv5-lite', ['--workdir=gs://b/runs/mnist'],
      'gs://b/runs/mnist')])
def test_tpu_vm_dry_run_prints_the_whole_sequence(fake_gcloud, accelerator, expected_type,
                                                 expected_version, workdir_flags, expected_workdir):
  env, marker = fake_gcloud
  process = run_script('tpu_vm.sh', '--dry_run', '--name=my-tpu', '--zone=us-central2-b',
                       f'--accelerator_type={accelerator}', *workdir_flags,
                       '--env=TFDS_DATA_DIR=gs://b/tfds', '--delete', CONFIG,
                       '--config.num_epochs=1', env=env)
  assert process.returncode == 0, process.stderr
  assert not marker.exists()
  commands = printed_commands(process)
  gcloud = [argv for argv in commands if argv[0] == 'gcloud']
  for argv in gcloud:
    assert argv[1:4] == ['compute', 'tpus', 'tpu-vm'], argv
    assert argv[5] == 'my-tpu' or argv[4] == 'scp' and argv[6].startswith('my-tpu:'), argv
    assert flag(argv, 'zone') == 'us-central2-b'
  verbs = [argv[4] for argv in gcloud]
  assert verbs[0] == 'create' and verbs[-1] == 'delete', verbs
  assert flag(gcloud[0], 'accelerator-type') == expected_type
  assert flag(gcloud[0], 'version') == expected_version
  assert '--quiet' in gcloud[-1]

  # The tarball of HEAD is made, copied to every worker, then unpacked and installed on every worker.
  archive = commands.index(next(argv for argv in commands if argv[:2] == ['git', 'archive']))
  assert commands[archive][-1] == 'HEAD'
  tarball = commands[archive][commands[archive].index('-o') + 1]
  assert commands[archive + 1][4:6] == ['scp', tarball]
  remote = [flag(argv, 'command') for argv in gcloud if argv[4] == 'ssh']
  assert all(flag(argv, 'worker') == 'all' for argv in gcloud if argv[4] in ('scp', 'ssh'))
  assert len(remote) == 3
  assert 'tar -xzf' in remote[0]
  assert 'pip install' in remote[1] and '"jax[tpu]"' in remote[1] and '-e .' in remote[1]
  assert 'gcsfs' in remote[1]  # gs:// paths (here TFDS_DATA_DIR) need it.

  train = remote[2]
  assert 'export TFDS_DATA_DIR=gs://b/tfds;' in train
  assert train.index('export TFDS_DATA_DIR') < train.index('-m mlfun_jax.experiments.train')
  assert f'--config={CONFIG} --workdir={expected_workdir} --config.num_epochs=1' in train
  assert 'tee -a ~/mlfun_jax_logs/train.log' in train
  assert '--coordinator_address' not in train and '--process_id' not in train
  assert verbs == ['create', 'scp', 'ssh', 'ssh', 'ssh', 'delete']


def test_tpu_vm_multi_host_needs_a_shared_gs_workdir(fake_gcloud):
  env, marker = fake_gcloud
  for workdir_flags in ([], ['--workdir=/home/me/runs/mnist']):
    process = run_script('tpu_vm.sh', '--dry_run', '--name=pod', '--zone=us-central2-b',
                         '--accelerator_type=v4-32', *workdir_flags, CONFIG, env=env)
    assert_one_error_line(process, 'v4-32', 'gs://')
  process = run_script('tpu_vm.sh', '--dry_run', '--name=pod', '--zone=us-central2-b',
                       '--accelerator_type=v4-32', '--workdir=gs://b/runs/pod', '--install=git',
                       '--git_url=https://example.com/mlfun_jax.git', CONFIG, env=env)
  assert process.returncode == 0, process.stderr
  gcloud = [argv for argv in printed_commands(process) if argv[0] == 'gcloud']
  assert [argv[4] for argv in gcloud] == ['create', 'ssh', 'ssh', 'ssh']  # No --delete: kept.
  assert all(flag(argv, 'worker') == 'all' for argv in gcloud[1:])
  assert 'git clone https://example.com/mlfun_jax.git' in flag(gcloud[1], 'command')
  assert '--workdir=gs://b/runs/pod' in flag(gcloud[-1], 'command')
  assert not marker.exists()


@pytest.mark.parametrize('args, fragment', [
    (['--name=my-tpu', CONFIG], '--zone'),
    (['--zone=us-central2-b', CONFIG], '--name'),
    (['--name=my-tpu', '--zone=us-central2-b'], 'CONFIG is required'),
    (['--name=my-tpu', '--zone=us-central2-b', '--worker=3', CONFIG], '--worker=3'),
])
def test_tpu_vm_usage_errors(fake_gcloud, args, fragment):
  env, marker = fake_gcloud
  assert_one_error_line(run_script('tpu_vm.sh', '--dry_run', *args, env=env), fragment)
  assert not marker.exists()


def test_local_without_arguments_prints_usage():
  process = run_script('local.sh')
  assert process.returncode == 2
  assert process.stderr.startswith('usage: ') and len(process.stderr.splitlines()) == 1
