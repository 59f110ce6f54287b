"""Step 7, serving: `dlw serve` runs the champion model with FastAPI and ONNX Runtime.

No torch is imported here (tests check it). The pieces, one file each: app (routes), inputs
(parsing and limits), batcher (dynamic micro-batching), holder (the model and its hot reload),
predlog (the prediction log), metrics (Prometheus), token (the bearer token), run (uvicorn).
"""

from dlworkflow.deploy.serve.holder import ServeError, check_servable
from dlworkflow.deploy.serve.run import serve

__all__ = ["ServeError", "check_servable", "serve"]
