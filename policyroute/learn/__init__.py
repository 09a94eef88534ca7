"""Learning a routing policy from outcomes: `policyroute learn`.

Outcomes in (each request's score on a cheap and on a strong tier), an ordinary `.route`
file out: phrases of the last turn or of the whole conversation, length and turns
thresholds, a few vetted regexes, request attributes and metadata values, and conjunctions
of two or three of them, each kept only when it beats random routing per strong call on
inner folds it was not chosen from. Rules are ordered by gain, each commented with the
cumulative strong share down to it, its gain beyond random (with an interval) and its inner
folds; inline tests come from real requests; the header holds the held-out report computed
by replay's own code, the quality curve's APGR and 95% share against random routing, and
(with cross-fitting) the same the other way round. When nothing holds up, the single-tier
policy says why.

The stages, one module each:

- `data`: examples (id, group, request, scores by tier) and the split by group;
- `features`: single conditions, in the language's own terms, mined by support alone;
- `tree`: conjunctions of two or three (a shallow tree), grown on each inner fold;
- `select`: excess gain per strong call, its lower bound, the greedy learner;
- `validate`: inner cross-validation by group and the pooled out-of-fold bootstrap;
- `learner`: preparing a part once, choosing within each budget, writing the policy;
- `emit`: the `.route` text, checked clean (zero warnings) and tested before it is written;
- `evaluate`, `figures`: held-out figures by replay's code, and the curve's APGR and 95% share;
- `run`: one run over the budgets, the header, cross-fitting; `curve`: the CSV and HTML.

The learner needs numpy (a dependency of `replay`); the policy it writes needs nothing but
policyroute. Nothing here is imported by `import policyroute`.
"""
