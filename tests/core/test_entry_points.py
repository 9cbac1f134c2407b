"""The installed tools: console scripts, --help, short config names, train's output, flag names.

The console scripts are run from the virtual environment's bin folder (the install the README
gives, `pip install -e '.[test]'`) in a folder outside the repository, as a user runs them.
"""

import json
import logging
import os
import pathlib
import subprocess
import sys

import pytest

from mlfun_jax.core import cli
from tests.conftest import REPO_ROOT
from tests.conftest import run_module

BIN = pathlib.Path(sys.executable).parent
# Console script -> (module, a flag of its own that --help must show).
TOOLS = {
    'mlfun-train': ('train', '--workdir'),
    'mlfun-predict': ('predict', '--top_k'),
    'mlfun-visualize': ('visualize', '--data_dir'),
    'mlfun-sample': ('sample', '--num_samples'),
    'mlfun-generate': ('generate', '--num_samples'),
    'mlfun-recognize': ('recognize', '--tolerance'),
    'mlfun-translate': ('translate', '--beam_width'),
    'mlfun-attack': ('attack', '--num_examples'),
    'mlfun-transcribe': ('transcribe', '--beam_width'),
    'mlfun-evaluate-speech': ('evaluate_speech', '--num_examples'),
    'mlfun-face-report': ('face_report', '--threshold_impostors'),
}
# Flags renamed so that one name means one thing in every tool: old name -> new name, per tool.
RENAMED = {
    'mlfun-sample': {'--num': '--num_samples', '--out': '--output_dir'},
    'mlfun-generate': {'--num': '--num_samples', '--out': '--output_dir'},
    'mlfun-attack': {'--out': '--output_dir'},
    'mlfun-translate': {'--beam_size': '--beam_width', '--attention_png': '--output_dir'},
    'mlfun-transcribe': {'--picture_dir': '--output_dir'},
    'mlfun-evaluate-speech': {'--limit': '--num_examples'},
}
TINY = ['--config.num_steps=2', '--config.model.conv_features=(8,16)',
        '--config.model.dense_features=(32,)', '--config.batch_size=64', '--config.eval_every=0',
        '--config.log_every=1', '--config.checkpoint_every=0']
TPU_PROBE = "Unable to initialize backend 'tpu'"


def run_tool(script: str, *args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
  """Runs an installed console script in `cwd` (a folder outside the repository)."""
  path = BIN / script
  assert path.is_file(), f'{path} is not installed: pip install -e .'
  return subprocess.run([str(path), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                        check=False)


def test_every_entry_point_is_a_console_script_of_mlfun_jax_experiments():
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  scripts = {ep.name: ep.value for ep in metadata.entry_points(group='console_scripts')
             if ep.value.startswith('mlfun_jax.')}
  expected = {name: f'mlfun_jax.experiments.{module}:run' for name, (module, _) in TOOLS.items()}
  assert {name: scripts.get(name) for name in expected} == expected
  assert scripts['mlfun-data'] == 'mlfun_jax.data.fetch:run'
  tools = {p.stem for p in (REPO_ROOT / 'experiments').glob('*.py')} - {'__init__'}
  assert tools == {module for module, _ in TOOLS.values()}, 'a tool without a console script'


@pytest.mark.parametrize('script', sorted(TOOLS))
def test_help_exits_0_with_the_tools_own_docstring_and_flags(script, tmp_path):
  module, flag = TOOLS[script]
  process = run_tool(script, '--help', cwd=tmp_path)
  assert process.returncode == 0, process.stderr[-2000:]
  assert f'\n  {flag}:' in process.stdout, process.stdout
  assert f'mlfun_jax.experiments.{module}:' in process.stdout  # The tool's own flags.
  assert process.stdout.splitlines()[0].strip(), 'no docstring first'
  assert 'Try --helpfull' in process.stdout
  for old, new in RENAMED.get(script, {}).items():
    assert f'  {new}:' in process.stdout
    assert f'  {old}:' not in process.stdout, f'{script} still defines {old}'


def test_module_form_help_exits_0_with_the_same_flags(tmp_path):
  process = subprocess.run([sys.executable, '-m', 'mlfun_jax.experiments.predict', '-h'],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
  assert process.returncode == 0, process.stderr[-2000:]
  assert 'mlfun_jax.experiments.predict:\n  --fit:' in process.stdout


def test_helpfull_exits_0_and_lists_every_module(tmp_path):
  process = run_tool('mlfun-sample', '--helpfull', cwd=tmp_path)
  assert process.returncode == 0, process.stderr[-2000:]
  assert 'mlfun_jax.experiments.sample:' in process.stdout and 'absl.logging:' in process.stdout


def test_an_old_flag_name_is_refused(tmp_path):
  process = run_tool('mlfun-translate', f'--workdir={tmp_path}', '--beam_size=2', 'hello',
                     cwd=tmp_path)
  assert process.returncode != 0 and 'beam_size' in process.stderr


def test_train_help_with_a_config_lists_its_fields_with_defaults(tmp_path):
  process = run_tool('mlfun-train', '--config=cnn_mnist', '--help', cwd=tmp_path)
  assert process.returncode == 0, process.stderr[-2000:]
  fields = process.stdout.split('Fields of --config=cnn_mnist', 1)[1].splitlines()[1:]
  config = cli.load_config_file(str(REPO_ROOT / 'experiments' / 'configs' / 'cnn_mnist.py'))
  assert len(fields) == len(cli.flat_fields(config))
  assert '  --config.batch_size=128' in fields
  assert '  --config.dataset=embedded_mnist' in fields
  assert '  --config.model.conv_features=(32, 64)' in fields
  assert '  --config.optimizer.learning_rate=0.003' in fields
  bare = run_tool('mlfun-train', '--help', cwd=tmp_path)
  assert bare.returncode == 0
  hint = bare.stdout.strip().splitlines()[-1]
  assert hint.startswith('Config fields: add --config=NAME') and 'cnn_mnist' in hint


def test_short_config_names_resolve_to_the_installed_configs():
  configs = REPO_ROOT / 'experiments' / 'configs'
  resolved = cli.resolve_config_spec('cnn_mnist')
  assert pathlib.Path(resolved).resolve() == (configs / 'cnn_mnist.py').resolve()
  path, argument = cli.resolve_config_spec('cnn_mnist:some_argument').rsplit(':', 1)
  assert pathlib.Path(path).resolve() == (configs / 'cnn_mnist.py').resolve()
  assert argument == 'some_argument'
  for spec in ('experiments/configs/cnn_mnist.py', 'my_config.py', 'dir/cnn_mnist'):
    assert cli.resolve_config_spec(spec) == spec  # Paths stay paths.
  by_name = cli.load_config_file('bird_or_not')  # It imports another installed config.
  assert by_name.to_dict() == cli.load_config_file(str(configs / 'bird_or_not.py')).to_dict()
  assert set(cli.config_names()) == {p.stem for p in configs.glob('*.py')} - {'__init__'}
  argv = cli.resolve_config_flag(['--config', 'vae_mnist', '--workdir=w', '--config.seed=1'])
  assert pathlib.Path(argv[1]).resolve() == (configs / 'vae_mnist.py').resolve()
  assert argv[2:] == ['--workdir=w', '--config.seed=1']


def test_unknown_config_name_is_one_line_listing_the_names(tmp_path):
  process = run_tool('mlfun-train', '--config=cnn_mnst', f'--workdir={tmp_path / "w"}',
                     cwd=tmp_path)
  assert process.returncode == 2
  assert 'Traceback' not in process.stderr
  (line,) = process.stderr.strip().splitlines()
  assert line.startswith("error: unknown config 'cnn_mnst' (flag --config)")
  for name in cli.config_names():
    assert name in line
  assert not (tmp_path / 'w').exists()


def test_tiny_run_prints_final_metrics_as_json_and_a_rerun_says_it_is_finished(tmp_path):
  workdir = tmp_path / 'run'
  first = run_tool('mlfun-train', '--config=cnn_mnist', f'--workdir={workdir}', *TINY,
                   cwd=tmp_path)
  assert first.returncode == 0, first.stderr[-3000:]
  (line,) = first.stdout.strip().splitlines()  # stdout holds the final metrics alone.
  final = json.loads(line)
  assert set(final) >= {'train_loss', 'train_accuracy', 'eval_loss', 'eval_accuracy'}
  assert 0.0 <= final['eval_accuracy'] <= 1.0
  assert TPU_PROBE not in first.stderr
  records = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert json.loads(records[-1])['eval_accuracy'] == pytest.approx(final['eval_accuracy'])

  files = {p: p.read_bytes() for p in sorted(workdir.rglob('*')) if p.is_file()}
  again = run_tool('mlfun-train', '--config=cnn_mnist', f'--workdir={workdir}', *TINY,
                   cwd=tmp_path)
  assert again.returncode == 0, again.stderr[-3000:]
  finished = [l for l in again.stderr.splitlines() if 'already finished' in l]
  assert len(finished) == 1 and '(step 2 of 2)' in finished[0]
  assert 'Training steps' not in again.stderr
  assert json.loads(again.stdout) == final  # What it reported at its end...
  assert {p: p.read_bytes() for p in sorted(workdir.rglob('*')) if p.is_file()} == files  # Same.


def _record(level: int, message: str) -> logging.LogRecord:
  return logging.LogRecord('jax._src.xla_bridge', level, 'xla_bridge.py', 1, message, (), None)


def test_the_tpu_probe_line_is_dropped_and_other_records_kept():
  drop = cli._DropTpuProbe()  # pylint: disable=protected-access
  assert not drop.filter(_record(logging.INFO, f"{TPU_PROBE}: INTERNAL: Failed to open libtpu.so"))
  assert drop.filter(_record(logging.WARNING, f'{TPU_PROBE}: asked for and failed'))
  assert drop.filter(_record(logging.INFO, "Unable to initialize backend 'cuda': no GPU"))
  assert drop.filter(_record(logging.INFO, 'Platform cpu is initialised'))


def test_a_console_run_prints_no_tpu_probe_line(tmp_path):
  script = ('import sys\nfrom mlfun_jax.core import cli\n'
            'def main(argv):\n  import jax\n  jax.devices()\n'
            'cli.run(main, config_flag=None)\n')
  env = {**os.environ, 'JAX_PLATFORMS': ''}
  process = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
  assert process.returncode == 0, process.stderr
  assert TPU_PROBE not in process.stderr


@pytest.mark.parametrize('module, flag, message', [
    ('predict', '--top_k=0', '0 is not a positive integer'),
    ('translate', '--length_penalty=nan', 'must be a finite number (not NaN or inf)'),
    ('transcribe', '--lm_weight=inf', 'must be a finite number (not NaN or inf)'),
    ('evaluate_speech', '--lm_weight=nan', 'must be a finite number (not NaN or inf)'),
    ('attack', '--step_size=-0.05', 'must be > 0 (a negative step walks away from the attack)'),
    ('generate', '--length=20000000000', '20000000000 is not an integer in the range [1, 1000000]'),
    ('sample', '--scale=1000', '1000 is not an integer in the range [1, 32]'),
    ('sample', '--num_samples=100000', '100000 is not an integer in the range [1, 4096]'),
    ('train', '--cpu_devices=abc', "invalid literal for int() with base 10: 'abc'"),
])
def test_a_bad_flag_is_one_line_and_exit_status_2(tmp_path, module, flag, message):
  """Out-of-range, non-finite and unparsable flag values, before anything runs."""
  extra = ['--config=cnn_mnist'] if module == 'train' else []
  result = run_module(f'mlfun_jax.experiments.{module}', f'--workdir={tmp_path}', *extra, flag,
                      'input')
  assert result.returncode == 2 and result.stdout == ''
  assert result.stderr.strip() == f'error: flag {flag}: {message}'
  assert list(tmp_path.iterdir()) == []
