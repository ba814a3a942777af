"""From runs to what the README says: suites, their records, claims and the published tables.

  suite       several runs (one after the other, or side by side on CPUs: scheduled.py), then one
              record (results.json) and its report
  runs        one adapter per kind of run (trained, PCA, baselines) behind one interface
  scheduled   a CPU suite's runs side by side, one single-core process each; worker: one such run
  trained     a trained run's record: the numbers of its reported epoch, predictions, figures
  results     results.json: the records of runs and suites, as data
  tables      markdown rendered from those records
  figures     the figures drawn beside a run and a suite
  claims      a paper's claims checked against the runs' numbers, with the noise of the photos
  heldout     a run's kept held-out predictions: intervals, confusions
  publish     a suite's record rendered between the markers of README.md and docs/results.md
Training (jaxvision.train) never imports this package.
"""
