"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('generate'), ids=str)
def test_generate_bad_input(case, text_runs, tmp_path):
  bad_inputs.check(case, text_runs.straight_dir, tmp_path)
