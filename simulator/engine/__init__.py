"""The simulator's engine: pure Python, numpy and pandas, no Django.

- :mod:`.requests`: the request table built from span rows (one row per request, its
  attempts in order);
- :mod:`.policies`: routing policies parsed from JSON or YAML and validated;
- :mod:`.counterfactual`: what a configuration would have produced for each request;
- :mod:`.replay`: a policy applied to every request (vectorized);
- :mod:`.metrics`: totals, intervals, Pareto frontier, APGR/CPT (RouteLLM), AIQ (RouterBench);
- :mod:`.run`: the whole pipeline for one policy or a sweep, as one JSON-able dict.
"""
