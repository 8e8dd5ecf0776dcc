"""Train the US banknote classifier from scratch and write the serving bundle.

    python -m model.train --data ../shared/data/usbills

Steps (fixed seeds): load + de-duplicate the data set; render augmented views of every
class (balanced), run the frozen lower part of MobileNetV2 once over them and cache the
32x32x32 activations, train the softmax head on the pooled features, then fine-tune the
upper blocks + head on the cached activations (BatchNorm frozen, label smoothing). That
training runs twice: first, in a process of its own, without the views of 15 % of the
training images, to fit the softmax temperature on them; then on every view, with the
temperature folded in. Finally export .tflite/.onnx, evaluate float and quantised exports on
the validation split, and write the bundle and docs/model-card.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from model import backbones, evaluate, options, samples, scenes  # noqa: E402
from model import data as mdata  # noqa: E402
from model.classes import LABELS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "model" / "bundles" / "usbills"
DEFAULT_WORK = REPO / "model" / "work"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def balanced_views(srcs: list[samples.Source], per_class: int, rng: random.Random):
    """Source indices giving ``per_class`` views of every class present (cycling sources)."""
    by_class: dict[int, list[int]] = {}
    for i, s in enumerate(srcs):
        by_class.setdefault(s.label, []).append(i)
    out = []
    for _c, idx in sorted(by_class.items()):
        reps = (per_class + len(idx) - 1) // len(idx)
        pool = (idx * reps)[:per_class] if per_class >= len(idx) else rng.sample(idx, per_class)
        out += pool
    rng.shuffle(out)
    return out


def lower_features(lower, images_fn, n: int, normalise, batch: int = 32,
                   label: str = "") -> np.ndarray:
    """Run the frozen lower network over n pictures (images_fn(i) -> PIL) with a progress bar.
    images_fn must be safe to call from threads."""
    from concurrent.futures import ThreadPoolExecutor

    import keras
    import tensorflow as tf

    fn = tf.function(lambda x: lower(x, training=False), reduce_retracing=True,
                     autograph=False)
    out = None
    tty = sys.stdout.isatty()
    bar = keras.utils.Progbar(n, unit_name=label) if tty else None
    t0, next_report = time.time(), 0.1
    batches = [range(start, min(n, start + batch)) for start in range(0, n, batch)]
    # PIL, numpy and TensorFlow release the GIL: two threads render the next batch while the
    # network runs on this one (a third less time on 2 cores, the same pictures).
    with ThreadPoolExecutor(2) as pool:
        def submit(idx):
            return [pool.submit(lambda i: normalise(np.asarray(images_fn(i))), i) for i in idx]

        pending = submit(batches[0]) if batches else []
        for k, idx in enumerate(batches):
            x = np.stack([f.result() for f in pending])
            pending = submit(batches[k + 1]) if k + 1 < len(batches) else []
            y = fn(tf.constant(x)).numpy().astype(np.float16)
            if out is None:
                out = np.empty((n, *y.shape[1:]), np.float16)
            out[idx.start : idx.stop] = y
            done = idx.stop
            if bar is not None:
                bar.update(done)
            elif done / n >= next_report or done == n:  # log files: a line every 10 %
                rate = done / max(1e-9, time.time() - t0)
                log(f"{label}: {done}/{n} ({rate:.1f}/s, ~{(n - done) / rate:.0f} s left)")
                next_report += 0.1
    return out


def cache_key(items, args) -> str:
    """Identifies the cached lower activations: data, view settings and the code making them."""
    import hashlib

    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.path.name}|{it.label}|{it.boxes}\n".encode())
    h.update(f"{args.views_per_class}|{args.seed}|{args.size}|{args.train_photos}".encode())
    for module in ("samples.py", "handheld.py", "scenes.py"):
        h.update((Path(__file__).parent / module).read_bytes())
    h.update((REPO / "usbills_app" / "locate.py").read_bytes())
    h.update(args.backbone.encode())
    h.update(backbones.get(args.backbone).source_bytes())
    return h.hexdigest()[:16]


def build_classifier(lower, upper, dropout: float = 0.2):
    import keras

    size = lower.input_shape[1]
    inp = keras.Input((size, size, 3), name="image")
    head_in = keras.Input(upper.output_shape[1:], name="pooled")
    h = keras.layers.Dropout(dropout, name="dropout")(head_in)
    h = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(h)
    head = keras.Model(head_in, h, name="head")
    full = keras.Model(inp, head(upper(lower(inp))), name="usbills")
    return head, full


def loss_and_targets(y: np.ndarray, smoothing: float):
    """The loss and the targets it takes; label smoothing needs one-hot targets in Keras."""
    import keras

    if smoothing <= 0:
        return "sparse_categorical_crossentropy", y
    onehot = np.eye(len(LABELS), dtype=np.float32)[y]
    return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing), onehot


def fold_temperature(head, t: float) -> None:
    """Divide the head's logits by ``t`` (its softmax layer's weights and bias)."""
    dense = head.get_layer("probs")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel / t, bias / t])


def calibrate_on_held_out(model, held: list, args, log) -> dict:
    """The softmax temperature, from a model that never trained on the held-out images
    ``held``, and how the held-out notes fare at the served threshold; with --threshold auto,
    that threshold too (see model.calibrate)."""
    from model import calibrate
    from model.backbone import normalise

    _, images, y = evaluate.validation_set(held, [], args.size)
    x = normalise(images, args.mean, args.std)
    passes = [model.predict(x, batch_size=32, verbose=0)]
    if args.half_turn:
        passes.append(model.predict(x[:, ::-1, ::-1], batch_size=32, verbose=0))
    t = calibrate.fit_temperature(passes, y)
    raw, probs = np.mean(passes, 0), calibrate.tempered(passes, t)
    ece = [round(evaluate.ece(p.max(1), p.argmax(1) == y), 4) for p in (raw, probs)]
    auto = args.threshold is None
    if auto:
        args.threshold = calibrate.choose_threshold(probs, y, args.target_coverage)["threshold"]
    served = evaluate.at_threshold(probs, y, args.threshold)
    log(f"held out: {len(held)} images, {len(y)} bill pictures; temperature {t:g} (ECE "
        f"{ece[0]} -> {ece[1]}); threshold {args.threshold}{' (auto)' if auto else ''}: "
        f"{100 * served['coverage']:.1f} % answered, {100 * served['answered_accuracy']:.1f} % "
        "of them right")
    return {"temperature": t, "held_out_ece": ece, "images": len(held), "pictures": len(y),
            "threshold": args.threshold, "auto": auto,
            "target_coverage": args.target_coverage if auto else None,
            "coverage": round(served["coverage"], 4),
            "answered_accuracy": round(served["answered_accuracy"], 4)}


def freeze_batchnorm(model) -> None:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # Keras 3: also runs it in inference mode


@dataclass
class Views:
    """Augmented training views: their sources, the source of each view, labels and the
    cached lower-network activations (row i is view i)."""

    srcs: list[samples.Source]
    views: list[int]
    y: np.ndarray
    x_low: np.ndarray

    def without(self, held: list) -> Views:
        """The views of every source not drawn from a ``held`` image (negatives from photos
        and synthetic scenes stay)."""
        held_ids = {id(it) for it in held}
        keep = np.array([self.srcs[v].item is None or id(self.srcs[v].item) not in held_ids
                         for v in self.views])
        return Views(self.srcs, [v for v, k in zip(self.views, keep, strict=True) if k],
                     self.y[keep], self.x_low[keep])


def render_views(train_items, args, bb, log) -> Views:
    """Balanced augmented views of ``train_items`` run through the frozen lower network
    (cached in --work: the same items, seed and settings give the same views)."""
    t0 = time.time()
    rng = random.Random(args.seed)
    train_photos = scenes.available_photos(args.train_photos)
    srcs = samples.sources(train_items, train_photos, rng, args.background_negatives,
                           args.synthetic_negatives)
    views = balanced_views(srcs, args.views_per_class, rng)
    log(f"{len(train_items)} training images, {len(srcs)} sources -> {len(views)} augmented "
        f"views ({args.views_per_class} per class)")
    args.views = len(views)
    view_rngs = [random.Random(rng.randrange(2**31)) for _ in views]
    y = np.array([srcs[v].label for v in views], np.int32)
    cache = args.work / f"lower-{cache_key(train_items, args)}.npy"
    if cache.is_file() and not args.no_cache:
        log(f"using cached lower features {cache}")
    else:
        lower, _ = bb.build(args.size)
        x_low = lower_features(
            lower, lambda i: samples.render(srcs[views[i]], view_rngs[i], size=args.size,
                                            photos=train_photos),
            len(views), bb.normalise, label="views")
        args.work.mkdir(parents=True, exist_ok=True)
        np.save(cache, x_low)
        del x_low
    # Read from the file as needed: pages the kernel can drop, not 2.5 GB more of the process's
    # own memory beside the float32 copy Keras trains from (a full training peaks at 17.7 GB).
    x_low = np.load(cache, mmap_mode="r")
    log(f"cached lower features {x_low.shape} ({x_low.nbytes / 1e6:.0f} MB) "
        f"in {time.time() - t0:.0f} s")
    return Views(srcs, views, y, x_low)


def fit(v: Views, args, bb, log):
    """One model trained from the seed on the views ``v``: (full model, its head). The same
    seed and views give the same model, whatever ran before in the process."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    lower, upper = bb.build(args.size)
    freeze_batchnorm(upper)
    head, full = build_classifier(lower, upper)
    verbose = 1 if sys.stdout.isatty() else 2
    loss, targets = loss_and_targets(v.y, args.label_smoothing)
    # A float32 tensor: Keras slices a tensor where it is but copies a numpy array, twice over
    # (fit on 24,000 views peaked at 8.46 GB from a tensor, 9.93 GB from a float32 array; the
    # same batches in the same order, so the same model).
    x_low = tf.cast(tf.convert_to_tensor(np.asarray(v.x_low)), tf.float32)

    log(f"stage 1: head on pooled features of {len(v.y)} views (backbone frozen)")
    pooled = upper.predict(x_low, batch_size=64, verbose=verbose)
    head.compile(keras.optimizers.Adam(args.head_lr), loss, metrics=["accuracy"])
    head.fit(pooled, targets, batch_size=64, epochs=args.head_epochs, verbose=verbose,
             shuffle=True)

    if args.ft_epochs > 0:
        log(f"stage 2: fine-tune {bb.name} {bb.split} + head ({args.ft_epochs} epochs)")
        inp = keras.Input(v.x_low.shape[1:])
        ft = keras.Model(inp, head(upper(inp)))
        per_epoch = (len(v.y) + 31) // 32
        # Warm up over the first epoch: a cold start at full rate wrecks the ImageNet features.
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, (args.ft_epochs - 1) * per_epoch), warmup_target=args.ft_lr,
            warmup_steps=per_epoch)
        ft.compile(keras.optimizers.Adam(lr), loss, metrics=["accuracy"])
        ft.fit(x_low, targets, batch_size=32, epochs=args.ft_epochs, verbose=verbose,
               shuffle=True)
    log(f"trained in {time.time() - t0:.0f} s")
    return full, head


def train_localiser(srcs: list[samples.Source], args, bb, log) -> dict:
    """The note localiser (model.localiser) on hand-held frames of the training notes: the
    frozen lower network with its head, and its figures on 10 % of frames it did not fit."""
    from model import localiser

    t0 = time.time()
    lower = bb.build_localiser_lower(args.size)
    x_low, masks = localiser.train_views(
        srcs, args.localiser_frames, args.seed + 7, lower, bb.normalise, args.size,
        scenes.available_photos(args.train_photos), lower_features)
    fit_n = int(len(masks) * 0.9)
    head = localiser.fit(x_low[:fit_n], masks[:fit_n], args.localiser_epochs, args.seed,
                         verbose=1 if sys.stdout.isatty() else 2)
    stats = localiser.sanity(lambda x: head.predict(x.astype(np.float32), verbose=0),
                             x_low[fit_n:], masks[fit_n:])
    size = args.localiser_size or min(192, args.size)
    photos = scenes.available_photos(args.train_photos)
    cal = localiser.calibration_frames(srcs, args.calibration_images, args.seed + 8, size,
                                       photos, bb.normalise) if args.calibration_images else None
    stats.update(frames=int(len(masks)), epochs=args.localiser_epochs,
                 seconds=round(time.time() - t0))
    log(f"localiser: {stats}")
    return {"model": localiser.at_size(head, bb, size), "stats": stats, "calibration": cal}


def calibration_pass(train_items: list, held_idx: list[int], args) -> dict:
    """Pass 1, run in a process of its own by ``train``: a model trained without the views of
    the held-out images ``train_items[i] for i in held_idx``, and the temperature (and, with
    --threshold auto, the threshold) it gives. Its own process, because a second training in
    the same process crashed TensorFlow (segfault in pass 2's first predict, full-size runs on
    this 24 GB machine, even after clearing the Keras session): pass 2 then runs exactly as a
    one-pass training does."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    bb = backbones.get(args.backbone)
    views = render_views(train_items, args, bb, log)  # the cache the parent just wrote
    held = [train_items[i] for i in held_idx]
    probe, _ = fit(views.without(held), args, bb, log)
    return calibrate_on_held_out(probe, held, args, log)


def train(args) -> dict:
    import tensorflow as tf

    from model import export

    tf.config.experimental.enable_op_determinism()
    t0 = args.started = time.time()

    log(f"loading {args.data}")
    ds = mdata.load(args.data, args.image_labels)
    mdata.dedup(ds)
    log(f"{ds.layout} layout: {len(ds.split('train'))} train / {len(ds.split('valid'))} valid "
        f"images, {len(ds.duplicates)} near-duplicates moved from valid to train, "
        f"{ds.image_labelled} box-less images labelled and {ds.relabelled} corrected by "
        f"--image-labels, {ds.unlabelled} unlabelled images left out")
    bb = backbones.get(args.backbone)
    args.size = args.size or bb.default_size
    args.mean, args.std = bb.mean, bb.std

    views = None
    if args.calibrate:
        # Pass 1: a model that never sees the held-out images calibrates the recipe; pass 2
        # then trains on every image (losing 15 % of the data cost about a point of top-1).
        # The views are rendered once: pass 1 trains on those not drawn from held-out images
        # (docs/benchmarks.md, "Training"); the time saved pays for the epochs.
        held = mdata.hold_out(ds, args.holdout)
        if not held:
            raise mdata.DataError(f"{args.data}: no training image left to hold out for "
                                  "calibration; pass a larger --holdout or --no-calibrate")
        for it in held:  # back in the list: pass 2 gets the views a one-pass run renders
            it.split = "train"
        train_items = ds.split("train")
        views = render_views(train_items, args, bb, log)
        log(f"pass 1 of 2: calibration model, {len(held)} training images held out")
        held_ids = {id(it) for it in held}
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            cal = pool.submit(calibration_pass, train_items,
                              [i for i, it in enumerate(train_items) if id(it) in held_ids],
                              argparse.Namespace(**{**vars(args), "no_cache": False})).result()
        args.threshold = cal["threshold"]
        args.calibration = {**cal, "held_back": ds.held_back}
        log("pass 2 of 2: served model, every training image")
    if views is None:
        views = render_views(ds.split("train"), args, bb, log)
    full, head = fit(views, args, bb, log)
    srcs = views.srcs
    # The cached activations are gigabytes (32x32x32 a view): with them still held, the
    # hand-held evaluation at the end ran out of 24 GB.
    del views
    if args.calibrate:
        fold_temperature(head, args.calibration["temperature"])
    loc = train_localiser(srcs, args, bb, log) if args.localiser_frames else None
    log(f"training done in {time.time() - t0:.0f} s")

    args.work.mkdir(parents=True, exist_ok=True)
    full.save(args.work / "usbills.keras")
    # Calibration pictures for full-integer quantisation: fresh augmented training views.
    cal_rng = random.Random(args.seed + 1)
    cal = np.stack([bb.normalise(np.asarray(samples.render(
        srcs[cal_rng.randrange(len(srcs))], cal_rng, size=args.size)))
        for _ in range(args.calibration_images)]) if args.calibration_images else None
    served = export.half_turn_average(full) if args.half_turn else full
    result = export.export_and_choose(served, ds, args, log, cal)
    if loc is not None:
        result["card"] = export.add_localiser(loc["model"], Path(args.out), loc["stats"],
                                              Path(args.work) / "localiser", loc["calibration"])
    log(f"wrote bundle {args.out} ({result['chosen']}) in {time.time() - t0:.0f} s total")
    if args.handheld_eval:
        import gc

        import keras

        from model import handheld_eval

        del full, head, served
        keras.backend.clear_session()
        gc.collect()
        try:
            result["handheld"] = handheld_eval.evaluate_into_card(Path(args.out), ds, args, log)
        except Exception as e:  # noqa: BLE001 - the bundle is written: say so, rerun by hand
            log(f"hand-held evaluation failed ({type(e).__name__}: {e}); rerun "
                "python -m model.handheld_eval")
    evaluate.write_model_card(result, ds, args.card)
    log(f"wrote {args.card}")
    return result


def _threshold(text: str) -> float | None:
    """--threshold: 'auto' (None: chosen on the held-out images) or a served threshold."""
    if text == "auto":
        return None
    try:
        return options.threshold(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: must be 'auto' or a number in (0, 1]") from None


def _localiser_size(text: str) -> int:
    size = options.whole_number(32)(text)
    if size % 16:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a multiple of 16 (the grid's cell)")
    return size


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="YOLO/Roboflow or folder-per-class dir")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle directory to write")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch dir (checkpoints)")
    p.add_argument("--card", type=Path, default=REPO / "docs" / "model-card.md")
    p.add_argument("--seed", type=int, default=0)
    mdata.add_image_labels_option(p)
    p.add_argument("--backbone", default="mobilenetv2", choices=sorted(backbones.BACKBONES),
                   help="ImageNet backbone")
    sizes = ", ".join(f"{n} {b.default_size}" for n, b in backbones.BACKBONES.items())
    p.add_argument("--size", type=int, default=None,
                   help=f"input size (default: the backbone's training size: {sizes})")
    p.add_argument("--views-per-class", type=int, default=4800)
    p.add_argument("--head-epochs", type=int, default=20)
    p.add_argument("--head-lr", type=float, default=1e-3)
    p.add_argument("--ft-epochs", type=int, default=2,
                   help="fine-tuning epochs (more views seen fewer times generalise better)")
    p.add_argument("--ft-lr", type=float, default=3e-4)
    p.add_argument("--label-smoothing", type=options.number_in(0, 1), default=0.1,
                   help="share of each target spread over all classes (0: none)")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                   help="first train without --holdout of the training images and fit the "
                   "softmax temperature on them (twice the training time)")
    p.add_argument("--holdout", type=options.number_in(0, 1, lo_open=True), default=0.15,
                   help="share of training images the calibration pass holds out")
    p.add_argument("--threshold", type=_threshold, default=0.9998,
                   help="served confidence threshold, or 'auto': the highest that answers "
                   "--target-coverage of the held-out notes")
    p.add_argument("--target-coverage", type=options.number_in(0, 1, lo_open=True), default=0.9,
                   help="share of held-out bill pictures --threshold auto must answer")
    p.add_argument("--formats", default="tflite,onnx", help="exports to try (first is preferred)")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--synthetic-negatives", type=int, default=60,
                   help="procedural no-banknote scenes: hands, faces, cards, receipts... "
                   "(model.scenes; each view is a new scene)")
    p.add_argument("--localiser-frames", type=options.whole_number(0), default=4000,
                   help="hand-held frames the note localiser trains on (0: no localiser)")
    p.add_argument("--localiser-epochs", type=options.whole_number(1), default=15)
    p.add_argument("--localiser-size", type=_localiser_size, default=None, metavar="PX",
                   help="input size of the served localiser, a multiple of 16 (default: 192, "
                   "or --size when smaller); same weights, any size")
    p.add_argument("--handheld-eval", action=argparse.BooleanOptionalAction, default=True,
                   help="run the hand-held evaluation (model.handheld_eval) on the new bundle")
    p.add_argument("--background-negatives", action="store_true",
                   help="also use regions outside the boxes as negatives (only for data sets "
                   "where every note is annotated)")
    p.add_argument("--half-turn", action=argparse.BooleanOptionalAction, default=True,
                   help="serve the mean over the photo and the photo turned 180 degrees "
                   "(twice the inference time)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the lower-network activations even if cached in --work")
    p.add_argument("--calibration-images", type=int, default=128,
                   help="training views that calibrate the int8 export (0: no int8 export)")
    p.add_argument("--latency-images", type=int, default=60,
                   help="validation pictures timed per export")
    p.add_argument("--train-photos", nargs="*", default=scenes.SKIMAGE_TRAIN)
    p.add_argument("--valid-photos", nargs="*", default=scenes.SKIMAGE_VALID)
    args = p.parse_args(argv)
    if args.threshold is None and not args.calibrate:
        p.error("--threshold auto needs the calibration pass (drop --no-calibrate)")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    try:
        train(args)
    except mdata.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


