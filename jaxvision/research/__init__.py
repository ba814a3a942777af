"""From runs to what the README says: suites, their reports, claims and the published tables.

  suite       several runs one after the other, then one report and the claims checked
  outcomes    one run's numbers, predictions and report (results.md, figures)
  report      tables and figures
  claims      a paper's claims checked against the runs' numbers, with the noise of the photos
  heldout     a run's kept held-out predictions: intervals, confusions
  publish     the suite's own tables copied between the markers of README.md and docs/results.md
Training (jaxvision.train) never imports this package.
"""
