"""Learning a routing policy from outcomes: `policyroute learn`.

Outcomes in (each request's score on a cheap and on a strong tier), an ordinary `.route`
file out: keyword sets, length thresholds, turns, a few vetted regexes and request
attributes, each rule commented with its support, its mean quality gain (with an interval)
and how stable it was across bootstrap resamples, inline tests from real requests, and a
header with the held-out report computed by replay's own code.

The stages, one module each:

- `data`: examples (id, group, request, scores by tier) and the split by group;
- `features`: candidate conditions, in the language's own terms, mined from training only;
- `select`: greedy choice by quality gained per strong call, stability selection, budget;
- `emit`: the `.route` text, checked clean (zero warnings) and tested before it is written;
- `evaluate`: held-out figures for the emitted file, by the code `replay` uses.

The learner needs numpy (`pip install 'policyroute[learn]'`); the policy it writes needs
nothing but policyroute. Nothing here is imported by `import policyroute`.
"""
