"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('sample'), ids=str)
def test_sample_bad_input(case, trained_gan, digit_classifier, tmp_path):
  bad_inputs.check(case, trained_gan[0], tmp_path, other=digit_classifier[0])
