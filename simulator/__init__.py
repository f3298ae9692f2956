"""The routing-policy simulator: replay stored traffic under another routing policy.

``simulator.engine`` is the pure part (pandas/numpy, no Django): the request table,
policies, the counterfactual model, the replay and its metrics. The rest of this
package is thin Django glue: loading spans from ClickHouse (:mod:`simulator.loader`),
tier prices from the catalog (:mod:`simulator.prices`), saved runs
(:mod:`simulator.models`), the Celery task, the REST API, the page and the
``simulate`` management command.
"""
