"""mlfun_jax.adversarial: adversarial examples against trained classifiers.

Public API: the attacks (`fgsm`, `pgd`, `pgd_restarts`, `targeted_iterative`, with `project`,
`random_start` and `TargetedResult`), which take float images in [0, 1]; `AttackSpec` and
`run_attack` (a restored `classification.Classifier` attacked at several epsilons, batched over
devices) and `random_targets`. Classification's adversarial training applies the attacks.
"""

from mlfun_jax.adversarial.attacks import fgsm
from mlfun_jax.adversarial.attacks import pgd
from mlfun_jax.adversarial.attacks import pgd_restarts
from mlfun_jax.adversarial.attacks import project
from mlfun_jax.adversarial.attacks import random_start
from mlfun_jax.adversarial.attacks import TargetedResult
from mlfun_jax.adversarial.attacks import targeted_iterative
from mlfun_jax.adversarial.robustness import AttackSpec
from mlfun_jax.adversarial.robustness import random_targets
from mlfun_jax.adversarial.robustness import run_attack

__all__ = [
    "fgsm", "pgd", "pgd_restarts", "project", "random_start", "TargetedResult",
    "targeted_iterative", "AttackSpec", "random_targets", "run_attack",
]
