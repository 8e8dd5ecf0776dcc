"""The seed-style reference server that scripts/bench-stack measures ours against.

What the project started from, rebuilt for the comparison: Flask with a Keras MobileNetV2 of
the served size (256x256 input, 8 classes) and one `model.predict` per request, served by
gunicorn with the same workers and threads as ours. Weights are random (weights=None): the
compute per request is the architecture's, and answers do not matter to a speed comparison.
It runs in its own venv (scripts/bench/reference-requirements.txt), never in the serving image.

    gunicorn -b 127.0.0.1:8000 --chdir scripts/bench "reference_server:app"
"""

import io

import keras
import numpy as np
from flask import Flask, jsonify, request
from PIL import Image

SIZE = 256
LABELS = ["USD-1", "USD-2", "USD-5", "USD-10", "USD-20", "USD-50", "USD-100", "none"]

model = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), weights=None,
                                       classes=len(LABELS))
app = Flask(__name__)


@app.get("/readyz")
def ready():
    return jsonify(status="ok")


@app.post("/api/v1/predict")
def predict():
    img = Image.open(io.BytesIO(request.get_data())).convert("RGB").resize((SIZE, SIZE))
    x = keras.applications.mobilenet_v2.preprocess_input(np.asarray(img, np.float32))
    probs = model.predict(x[None], verbose=0)[0]
    top = int(np.argmax(probs))
    return jsonify(label=LABELS[top], confidence=float(probs[top]))
