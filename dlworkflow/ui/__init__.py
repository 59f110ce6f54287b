"""`dlw ui`: the project in a browser, a local web app over the project's own records.

The pieces, one file each: app (the FastAPI app and its routes), auth (the token gate and the
login cookie), overview (the overview page's data, from `dlw status`), runs (the runs page's
data, from the MLflow store), run (uvicorn). The pages are Jinja2 templates (templates/) with
one vendored stylesheet (static/ui.css): nothing is fetched from the network.
"""

from dlworkflow.ui.app import create_app
from dlworkflow.ui.run import ui

__all__ = ["create_app", "ui"]
