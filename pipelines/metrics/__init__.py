"""Quality numbers for generated images.

    judge.py          the judge: a small CNN trained once per data set (cached), whose
                      penultimate layer is the feature space image metrics use
    distances.py      Fréchet distance, KID, k-NN precision / recall between feature sets
    image_quality.py  judge_samples(): samples vs real images, next to the floor (a copy of
                      the training split against the same real images)
    probe.py          the older linear probe on pixels (conditional accuracy in a second)
"""

from .distances import frechet_distance, kernel_inception_distance, precision_recall
from .image_quality import (JUDGED_DRAWS, draw_judged_samples, judge_samples,
                            judged_sample_count, real_halves, training_copy)
from .judge import JUDGE_VERSION, Judge, get_judge
from .probe import fit_probe_classifier, probe_accuracy

__all__ = [
    "JUDGED_DRAWS", "JUDGE_VERSION", "Judge", "draw_judged_samples", "fit_probe_classifier",
    "frechet_distance", "get_judge", "judge_samples", "judged_sample_count",
    "kernel_inception_distance", "precision_recall", "probe_accuracy", "real_halves",
    "training_copy",
]
