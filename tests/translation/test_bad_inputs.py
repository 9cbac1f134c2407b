"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('translate'), ids=str)
def test_translate_bad_input(case, short_run, tmp_path):
  bad_inputs.check(case, short_run.workdir, tmp_path)
