"""Bad inputs of this family's entry points (the rows of tests/bad_inputs.py), on its trained run."""

import pytest

from tests import bad_inputs


@pytest.mark.parametrize('case', bad_inputs.cases('transcribe'), ids=str)
def test_transcribe_bad_input(case, tiny_recognisers, tmp_path):
  bad_inputs.check(case, tiny_recognisers.workdir(0), tmp_path)


@pytest.mark.parametrize('case', bad_inputs.cases('evaluate_speech'), ids=str)
def test_evaluate_speech_bad_input(case, tiny_recognisers, tmp_path):
  bad_inputs.check(case, tiny_recognisers.workdir(0), tmp_path)
