"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('attack'), ids=str)
def test_attack_bad_input(case, digit_classifier, tmp_path):
  bad_inputs.check(case, digit_classifier[0], tmp_path)
