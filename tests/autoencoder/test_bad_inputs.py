"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('visualize'), ids=str)
def test_visualize_bad_input(case, trained_2d, tmp_path):
  bad_inputs.check(case, trained_2d[0], tmp_path)
