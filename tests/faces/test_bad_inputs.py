"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('recognize'), ids=str)
def test_recognize_bad_input(case, trained_workdir, tmp_path):
  bad_inputs.check(case, trained_workdir[0], tmp_path)


@pytest.mark.parametrize('case', bad_inputs.cases('face_report'), ids=str)
def test_face_report_bad_input(case, trained_workdir, tmp_path):
  bad_inputs.check(case, trained_workdir[0], tmp_path)
