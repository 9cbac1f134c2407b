"""Bad inputs of mlfun-train (the rows of tests/bad_inputs.py): one line, exit 2, nothing written."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('train'), ids=str)
def test_train_bad_input(case, tmp_path):
  bad_inputs.check(case, None, tmp_path)
