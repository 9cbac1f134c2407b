"""Every experiment config says, before anyone launches it, how to run it and what it reaches.

Its docstring gives the command that runs this very file, a measured result, the wall time and
the machine it was measured on.
"""

import ast
import re

import pytest

from tests.core.test_configs import CONFIG_FILES

WALL_TIME = re.compile(r'\b\d[\d,.]*\s*(s|min|h|minutes|hours)\b[^.]*\bwall\b|\bwall\b[^.]*?\b\d[\d,.]*'
                       r'\s*(s|min|h|minutes|hours)\b', re.IGNORECASE | re.DOTALL)
RESULT = re.compile(r'\b\d[\d,.]*\s*(%|bits/char|BLEU|chrF|WER|CER|FID|nats|dB)|'
                    r'\b(accuracy|loss|AUC|WER|CER|BLEU|chrF|FID)\b[^.]*?\b\d+\.\d+',
                    re.IGNORECASE | re.DOTALL)
MACHINE = re.compile(r'\b(CPU|GPU|TPU|Xeon|EPYC|H100|H200|A100)\b')


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
def test_config_docstring_gives_command_result_wall_time_and_machine(path):
  docstring = ast.get_docstring(ast.parse(path.read_text())) or ''
  runs_this_file = re.compile(rf'--config=(experiments/configs/)?{path.stem}(\.py)?(?![\w.])')
  assert runs_this_file.search(docstring), 'no command running this file'
  assert 'mlfun_jax.experiments.train' in docstring or 'mlfun-train' in docstring
  assert RESULT.search(docstring), 'no measured result'
  assert WALL_TIME.search(docstring), 'no wall time'
  assert MACHINE.search(docstring), 'no machine'


def test_the_patterns_catch_a_docstring_without_numbers():
  assert not RESULT.search('Trains a network; works well.')
  assert not WALL_TIME.search('Trains quickly.')
  assert RESULT.search('98.9% held-out accuracy') and WALL_TIME.search('in 50 s wall')
