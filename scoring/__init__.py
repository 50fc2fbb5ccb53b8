"""Shared maths of the platform: numpy and scipy only, no Django, no apps, no torch.

- `scoring.agreement`: two-rater figures (confusion matrix, weighted accuracy, within-one,
  quadratic kappa) with one definition each, used for readers and the model alike;
- `scoring.reliability`: multi-reader reliability (Krippendorff's alpha, ICC(2,1), SEM, SDC);
- `scoring.readers`: the one reader simulator (confusion matrices, panels, reading designs,
  draws), used by the consensus validation and benchmark, the phantom study and the
  active-learning simulation, with the consensus validation's scenarios;
- `scoring.image_readers`: readers who see a phantom's lesions, missing the less visible ones;
- `scoring.bootstrap`: patient-level bootstrap intervals;
- `scoring.progression`: change scores, ICC and Bruynesteyn SDC of change, progressors, the
  cumulative probability plot, and the monotone longitudinal Dawid-Skene (damage never heals);
- `scoring.series_readers`: simulated readers of a patient's series in each reading mode;
- `scoring.dawid_skene`, `scoring.ordinal_ds`, `scoring.guard`: the fusion maths (plain and
  regularised ordinal Dawid-Skene, the degeneracy guard), here so that the Django-free model
  benchmark fuses readers' grades with the platform's own EM.

Both the consensus and modeling apps (and the Django-free `modeling.ml`) import this package; it
imports none of them, so a formula has one home whichever side needs it.
"""
