"""`mlmake serve`: the prediction service of an http deploy target.

    server.py     serve(root, deploy, …) and serve_bundle(folder, …): run it on uvicorn
    app.py        the FastAPI app: /predict, /feedback, /health, /metadata; token and size guards
    predictor.py  a request body → predictions, checked against the model signature (no web imports)
    live.py       the loaded bundle and the watcher that swaps in a rebuilt one
    store.py      the online store: a feature row by entity key
    log.py        the JSONL log of predictions and feedback

Nothing here is imported on the plan/validate path; fastapi and uvicorn only in app.py
and server.py, and only when serving."""
