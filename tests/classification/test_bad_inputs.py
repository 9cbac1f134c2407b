"""Bad inputs of mlfun-predict (the rows of tests/bad_inputs.py), on the tiny digit classifier."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('predict'), ids=str)
def test_predict_bad_input(case, digit_classifier, tmp_path):
  bad_inputs.check(case, digit_classifier[0], tmp_path)
