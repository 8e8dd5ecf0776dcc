"""Train the handwritten-digits site's model and write its bundle (second site, issue 7).

    python -m model.digits [--out model/bundles/digits] [--epochs 60] [--seed 0]

Data: scikit-learn's bundled `load_digits` (1,797 8x8 images, values 0..16, ink = high; offline).
A stratified 25 % is held out and never trained on; its accuracy goes into the card's metrics.
The model takes an 8x8x1 grey image scaled by 1/255 (a picture with a light digit on a dark
background, as MNIST and the page's drawing canvas); load_digits values are mapped 0..16 -> 0..255.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "bundles" / "digits"
SIZE = 8
NAMES = {
    "en": ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"],
    "es": ["Cero", "Uno", "Dos", "Tres", "Cuatro", "Cinco", "Seis", "Siete", "Ocho", "Nueve"],
}
THRESHOLD = 0.6
DESCRIPTION = {
    "en": "Send a photo or a picture of one handwritten digit (light on dark), or its pixels "
          "to the API. The page says which digit it is.",
    "es": "Envíe una foto o una imagen de un dígito manuscrito (claro sobre oscuro), o sus "
          "píxeles a la API. La página le dice qué dígito es.",
}

# The site's own words where the built-in ones are about banknotes (card "text",
# usbills_app/site_text.py).
TEXT = {
    "en": {
        "short_name": "Digits",
        "status_scanning": "Scanning. Hold a written digit about 20 cm (8 inches) from the camera.",
        "status_paused": "Paused. Show another digit.",
        "spoken_start": "Camera on. Hold a digit in front of the camera.",
        "photo_label": "Take or choose a photo of a digit",
        "photo_not_image": "That file is not a picture. Choose a photo of a digit.",
        "error_no_file": "No photo was sent. Choose a photo of a digit.",
        "hint_more": "Show all of the digit, filling the view.",
        "hint_closer": "Move the phone closer to the digit.",
        "no_note": "No digit found.",
        "local_only_help": "Where this browser can, digits are recognised on the phone itself "
                           "and no picture leaves it. With this on, pictures are never sent, "
                           "even where it cannot.",
        "local_unavailable": "This phone cannot recognise digits itself. Turn off “On this "
                             "phone only” below to use the site.",
        "footer_privacy": "Where this browser can, digits are recognised on the phone and no "
                          "picture is sent. Otherwise pictures are sent to this site only to "
                          "be identified.",
        "vibrate_help": "Vibration: 1 pulse for 0, 2 for 1, and so on up to 10 for 9. Two long "
                        "buzzes: not identified. One very short buzz: scanning. One long "
                        "buzz: no connection.",
        "unsure": "Cannot identify the digit. It may be {a} or {b}.",
        "unsure_one": "Cannot identify the digit. It may be {a}.",
    },
    "es": {
        "short_name": "Dígitos",
        "status_scanning": "Escaneando. Sostenga un dígito escrito a unos 20 cm (8 pulgadas) "
                           "de la cámara.",
        "status_paused": "En pausa. Muestre otro dígito.",
        "spoken_start": "Cámara encendida. Sostenga un dígito delante de la cámara.",
        "photo_label": "Tome o elija una foto de un dígito",
        "photo_not_image": "Ese archivo no es una imagen. Elija una foto de un dígito.",
        "error_no_file": "No se envió ninguna foto. Elija una foto de un dígito.",
        "hint_more": "Muestre todo el dígito, llenando la vista.",
        "hint_closer": "Acerque el teléfono al dígito.",
        "no_note": "No se encontró ningún dígito.",
        "local_only_help": "Donde este navegador puede, los dígitos se reconocen en el propio "
                           "teléfono y ninguna imagen sale de él. Con esta opción, las imágenes "
                           "no se envían nunca, aunque no pueda.",
        "local_unavailable": "Este teléfono no puede reconocer dígitos por sí mismo. Desactive "
                             "“Solo en este teléfono” abajo para usar el sitio.",
        "footer_privacy": "Donde este navegador puede, los dígitos se reconocen en el teléfono "
                          "y no se envía ninguna imagen. Si no, las imágenes se envían a este "
                          "sitio solo para identificarlas.",
        "vibrate_help": "Vibración: 1 pulso para 0, 2 para 1, y así hasta 10 para 9. Dos "
                        "vibraciones largas: no identificado. Una vibración muy corta: "
                        "escaneando. Una vibración larga: sin conexión.",
        "unsure": "No se puede identificar el dígito. Puede ser {a} o {b}.",
        "unsure_one": "No se puede identificar el dígito. Puede ser {a}.",
    },
}


def load(seed: int = 0):
    """(x_train, y_train, x_test, y_test) as 0..255 float32 8x8x1 images, stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) * (255.0 / 16.0))[..., None]
    return train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)


def shifted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add one-pixel shifts (drawn digits are rarely centred like the scanned ones)."""
    xs, ys = [x], [y]
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        s = np.roll(x, (dy, dx), axis=(1, 2))
        # np.roll wraps around; blank the wrapped row/column instead.
        if dy:
            s[:, 0 if dy > 0 else -1] = 0
        if dx:
            s[:, :, 0 if dx > 0 else -1] = 0
        xs.append(s)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def build(batch_size: int | None = None):
    import keras

    inp = keras.Input((SIZE, SIZE, 1), batch_size=batch_size, name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out)


def card(sha: str, accuracy: float, n_test: int, seed: int) -> dict:
    return {
        "schema_version": 1,
        "name": "digits",
        "kind": "digits",
        "title": {"en": "Handwritten digit reader", "es": "Lector de dígitos manuscritos"},
        "description": DESCRIPTION,
        "text": TEXT,
        "version": "1.0.0",
        "task": "image-classification",
        "model_file": "model.tflite",
        "format": "tflite",
        "sha256": sha,
        "input": {"height": SIZE, "width": SIZE, "channels": 1, "layout": "NHWC",
                  "dtype": "float32", "color": "L", "scale": 1 / 255},
        "classes": [
            {"id": i, "label": str(i), "value": i,
             "display": {"en": NAMES["en"][i], "es": NAMES["es"][i]}}
            for i in range(10)
        ],
        "threshold": THRESHOLD,
        "metrics": {"top1_accuracy": round(accuracy, 4), "validation_images": n_test,
                    "split": f"stratified 25 % of load_digits, random_state={seed}"},
        "dataset": {"name": "scikit-learn load_digits (UCI optical recognition of handwritten "
                            "digits, test part)",
                    "url": "https://archive.ics.uci.edu/dataset/80",
                    "license": "CC BY 4.0"},
        "license": "CC BY 4.0 (data); model weights: see docs/model-card-digits.md",
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    x_tr, x_te, y_tr, y_te = load(args.seed)
    xa, ya = shifted(x_tr, y_tr)
    keras.utils.set_random_seed(args.seed)
    train = build()
    train.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train.fit(xa / 255.0, ya, epochs=args.epochs, batch_size=64, verbose=0, shuffle=True)
    probs = train.predict(x_te / 255.0, verbose=0)
    acc = float((probs.argmax(1) == y_te).mean())
    print(f"held-out accuracy: {acc:.4f} on {len(y_te)} images")

    # The exported graph has batch 1, like the serving runtime feeds it.
    model = build(batch_size=1)
    model.set_weights(train.get_weights())
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.tflite").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    (args.out / "card.json").write_text(
        json.dumps(card(sha, acc, len(y_te), args.seed), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8")
    print(f"wrote {args.out}/model.tflite ({len(data)} bytes) and card.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
