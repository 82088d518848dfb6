"""Payments as an AWS Lambda function: the handler is ``payments.function.handler``.

The same ``create_app`` as the container (``python -m payments``), run by
:class:`obskit.LambdaFunction`, which explains the init phase, Mangum's lifespan and
the flush before return. ``serverless/template.yaml`` deploys it.
"""

import time

# Before any other import: the init span (function.init) covers the imports, which
# are most of a cold start.
_STARTED_NS = time.time_ns()

import obskit  # noqa: E402  (after the clock starts, on purpose)
from payments.main import create_app  # noqa: E402
from payments.settings import Settings  # noqa: E402

# Module level, so Lambda's init phase does the work once per environment and every
# warm invocation reuses the app and the engine's pool.
handler = obskit.LambdaFunction(create_app, Settings(), started_ns=_STARTED_NS)
