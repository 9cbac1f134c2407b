"""Face recognition with learned embeddings: a CNN trained with a triplet and/or CosFace loss.

Config fields (`mlfun_jax.faces.config.defaults()`, each with a comment there): data_dir (a face
folder root/<person>/*), image_size ([H, W], None: the images' own size), face_crop and
face_margin (what part of each face frame the network sees), people ([train, validation, test]
counts), split_seed, people_per_batch (P) and images_per_person (K) (the global batch is P x K),
loss ('triplet', 'cosface' or 'triplet+cosface': their sum with the CosFace term times
cosface.weight), triplet.margin / triplet.squared / triplet.mining ('semi_hard', 'batch_hard'),
cosface.scale / cosface.margin / cosface.weight, augment.* (shift, flip, rotate_degrees,
brightness, contrast, erase, background: new backgrounds around training heads),
test_time_augmentation, lbp_weight, lpq_share and mirror_descriptors (the texture descriptor
joined to the embedding, `texture.Texture`),
threshold_impostors ('validation' or 'validation+train'), tolerance and tolerance_keep (recognize's
tolerance, or how it is picked), embedder (what recognize embeds with: 'network' or dlib's
pretrained 'dlib_resnet'), model.* (`FaceEmbedding`), optimizer.*, num_steps and the loop's
cadence fields.

Training mines triplets over the global batch (embeddings gathered from every device); the CosFace
loss classifies each image among the training people with the model's `class_centres` (only
training uses them; the embedding measured and used by recognize is the L2-normalised one). With
config.face_crop the network sees each face frame's face box only. Each evaluation embeds the
validation people and reports verification measures (AUC, the best threshold and its accuracy, TAR
at 1% FAR), one-enrolled-image identification and recognize's tolerance
(`face_measures.pick_tolerance`); the threshold and the tolerance are saved in the checkpoint's meta
(`validation.threshold`, `validation.tolerance`; config.tolerance, when set, is used instead). The
threshold is the best-accuracy one over the validation people's pairs, with
`threshold_impostors='validation+train'` also over every validation face against every training
face. Without validation people nothing is evaluated and config.tolerance must be set. At the end
the test people, never seen in training nor used for a default, are measured as recognize embeds
them (report.json; with embedder='dlib_resnet' by dlib's network at its tolerance 0.6), with a
scatter plot of their embeddings and a HOG picture of a face, and the photo tools are trained on the
training people (`photo_training`: the HOG face detector, the eye locator).
"""

import os

from absl import logging
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlfun_jax import data
from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import augment
from mlfun_jax.data import image_stats
from mlfun_jax.faces import backgrounds
from mlfun_jax.faces import config as faces_config
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import embedding
from mlfun_jax.faces import face_box
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.faces import model as face_embedding
from mlfun_jax.faces import photo_training
from mlfun_jax.faces import pictures as face_pictures
from mlfun_jax.faces import texture
from mlfun_jax.faces import triplet
from mlfun_jax.models.init import init_variables

TrainState = train_state.TrainState
LOSSES = ("triplet", "cosface", "triplet+cosface")


def loss_terms(config: ml_collections.ConfigDict) -> tuple[bool, bool]:
  """(uses the triplet loss, uses the CosFace loss) under config.loss."""
  loss = config.loss
  return loss in ("triplet", "triplet+cosface"), loss in ("cosface", "triplet+cosface")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first bad loss config field."""
  if config.loss not in LOSSES:
    raise UserError(f"unknown config field loss={config.loss!r}; choose one of "
                    f"{', '.join(LOSSES)}")
  if config.triplet.mining not in triplet.MINING:
    raise UserError(f"unknown config field triplet.mining={config.triplet.mining!r}; choose one "
                    f"of {', '.join(triplet.MINING)}")
  if config.threshold_impostors not in face_measures.THRESHOLD_IMPOSTORS:
    raise UserError(f"unknown config field threshold_impostors={config.threshold_impostors!r}; "
                    f"choose one of {', '.join(face_measures.THRESHOLD_IMPOSTORS)}")
  if loss_terms(config)[1]:
    c = config.cosface
    if not c.scale > 0:
      raise UserError(f"config field cosface.scale={c.scale} must be > 0")
    if not 0 <= c.margin < 2:
      raise UserError(f"config field cosface.margin={c.margin} must be in [0, 2)")
    if not c.weight > 0:
      raise UserError(f"config field cosface.weight={c.weight} must be > 0")


def check_photo_config(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming config field photos.negatives_data_dir when it lacks CIFAR-10."""
  folder = config.photos.negatives_data_dir
  if config.photos.hog_detector and folder is not None:
    from mlfun_jax.faces import detector_windows  # pylint: disable=g-import-not-at-top
    if not os.path.isfile(os.path.join(folder, detector_windows.CIFAR_ZIP)):
      raise UserError(f"config field photos.negatives_data_dir={folder!r} holds no "
                      f"{detector_windows.CIFAR_ZIP} (CIFAR-10's training photos, the HOG "
                      "detector's negatives); fetch it with: mlfun-data fetch cifar10, or unset it")


def create_model(config: ml_collections.ConfigDict) -> face_embedding.FaceEmbedding:
  """The network, computing in config.dtype (embeddings float32); with a CosFace loss it holds the
  centres of the config.people[0] train people."""
  m = config.model
  return face_embedding.FaceEmbedding(
      conv_features=tuple(m.conv_features), convs_per_block=m.convs_per_block,
      dense_features=tuple(m.dense_features), embedding_size=m.embedding_size,
      dropout_rate=m.dropout_rate, num_classes=config.people[0] if loss_terms(config)[1] else 0,
      dtype=jnp.dtype(config.dtype))


def create_state(model, config: ml_collections.ConfigDict, image_shape, num_steps: int,
                 rng: jax.Array) -> TrainState:
  params = init_variables(model, {"params": rng}, jnp.zeros((1, *image_shape)),
                          train=False)["params"]
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=optim.create_optimizer(config.optimizer, num_steps,
                                                     config.grad_accum_steps))


def augment_faces(keys: jax.Array, images: jax.Array, config: ml_collections.ConfigDict,
                  bank: np.ndarray | None = None) -> jax.Array:
  """Each uint8 face [B, H, W, C] (0..255) augmented with its own key [B]: a new background
  (`backgrounds.replace_background` from `bank`, uint8 [N, H, W, C], with probability
  config.augment.background), shift, flip, rotation (`augment.augment`), then brightness,
  contrast and random erasing. Keys by example make the result independent of how the batch is
  split over devices.

  Raises:
    InputConventionError: images that are not a uint8 batch [B, H, W, C].
    UserError: config.augment.background > 0 without a bank.
  """
  checks.check_images(images, name="images", dtype_kind="u")
  a = config.augment
  if a.background > 0 and bank is None:
    raise UserError("config field augment.background > 0 needs a background bank")
  grid = backgrounds.input_grid(images.shape[1:3], face_data.input_box(config))

  def one(key, image):
    geometry_rng, light_rng = jax.random.split(key)
    erase_rng = jax.random.fold_in(key, 1)
    out = image
    if a.background > 0:
      out = backgrounds.replace_background(jax.random.fold_in(key, 2), image, bank, grid,
                                           a.background)
    out = augment.augment(geometry_rng, out[None], shift=a.shift, flip=a.flip,
                          rotate_degrees=a.rotate_degrees)
    out = augment.random_brightness_contrast(light_rng, out, a.brightness, a.contrast)
    return augment.random_erase(erase_rng, out, a.erase)[0]

  return jax.vmap(one)(keys, images)


def make_train_step(model, config: ml_collections.ConfigDict, mean: float, std: float,
                    bank: np.ndarray | None = None):
  """(state, batch, rng) -> (state, metrics): the configured loss over the global batch.

  bank: background squares for config.augment.background (`backgrounds.background_bank`).

  batch['label'] must be the class 0..C-1 of each image when the CosFace loss is used (see
  `face_data.class_labels`). The triplet term's metrics keep their names ('loss' is the total,
  'triplet_loss' the triplet term when CosFace is added)."""
  check_config(config)
  use_triplet, use_cosface = loss_terms(config)
  margin, squared = config.triplet.margin, config.triplet.squared
  mining = config.triplet.mining

  def train_step(state, batch, rng):
    checks.check_ids(batch["label"], name="batch['label']", rank=1)
    augment_rng, dropout_rng = jax.random.split(rng)
    keys = parallel.example_keys(augment_rng, batch["image"].shape[0])
    images = image_stats.normalise(augment_faces(keys, batch["image"], config, bank), mean, std)
    dropout_rng = parallel.device_key(dropout_rng)

    def loss_fn(params):
      embeddings = model.apply({"params": params}, images, train=True,
                               rngs={"dropout": dropout_rng})
      loss = 0.0
      metrics = {}
      if use_triplet:
        loss, metrics = triplet.gathered_triplet_loss(embeddings, batch["label"], parallel.AXIS,
                                                      margin, squared, mining)
      if use_cosface:
        c = config.cosface
        cos_loss, cos_metrics = triplet.device_cosface_loss(
            embeddings, batch["label"], params["class_centres"], parallel.AXIS, c.scale, c.margin)
        if use_triplet:
          metrics["triplet_loss"] = metrics["loss"]
          loss = loss + c.weight * cos_loss
          metrics["loss"] = metrics["triplet_loss"] + c.weight * cos_metrics["cosface_loss"]
        else:
          loss = cos_loss
          metrics["loss"] = cos_metrics["cosface_loss"]
        metrics.update(cos_metrics)
      return loss, metrics

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    return state.apply_gradients(grads=grads), metrics

  return train_step


def make_eval_step(model, num_images: int, mean: float, std: float,
                   test_time_augmentation: bool = False,
                   described: texture.Texture = texture.NONE):
  """(state, batch) -> {'embeddings': float32 [N, E] with this batch's rows filled in (at
  batch['index']), 'count'}: summed over batches and devices, the embeddings of the whole split.

  batch['image']: uint8 faces [b, H, W, C] (checked by `embedding.embed`).
  """

  def eval_step(state, batch):
    embeddings = embedding.embed(model, state.params, batch["image"], mean, std,
                                 test_time_augmentation, described)
    mask = batch["mask"]
    rows = jnp.zeros((num_images, embeddings.shape[1]), jnp.float32)
    return {"embeddings": rows.at[batch["index"]].add(embeddings * mask[:, None]),
            "count": mask.sum()}

  return eval_step


def indexed_eval_batches(images: np.ndarray, **layout):
  """`data.eval_batches` of `images` [N, H, W, C] with each image's row as batch['index']."""
  indexed = data.ArraySplit(images, np.arange(len(images), dtype=np.int32))
  for batch in data.eval_batches(indexed, **layout):
    batch["index"] = batch.pop("label")
    yield batch


def make_summarize_eval(labels: np.ndarray, tolerance_keep: float = 0.0):
  """Totals -> validation measures (verification and nearest-neighbour identification) and
  recognize's naming tolerance (`face_measures.pick_tolerance`, on the validation people).

  The eval split is the validation faces (people `labels`), possibly followed by impostor faces
  (training people) that only serve to pick the threshold (`face_measures.pick_threshold`).
  """

  def summarize_eval(totals):
    validation, impostors = np.split(np.asarray(totals["embeddings"]), [len(labels)])
    measures = face_measures.evaluate_people(
        validation, labels, threshold=face_measures.pick_threshold(validation, labels, impostors),
        linear=False)
    keys = ("auc", "accuracy", "balanced_accuracy", "threshold", "tar_at_far_1pct",
            "nearest_neighbour_top1")
    return {k: measures[k] for k in keys} | {
        "tolerance": face_measures.pick_tolerance(validation, labels, tolerance_keep),
        "count": totals["count"]}

  return summarize_eval


def report_embedder(config: ml_collections.ConfigDict, model, mean: float, std: float, params,
                    dataset: face_data.FaceDataset):
  """(embedder, params, dataset, tolerance) that measure what recognize does with the run's
  config field `embedder`: the run's network on `dataset` at the config's tolerance, or dlib's
  pretrained ResNet on the same people's ORL-frame faces at dlib's tolerance."""
  if config.embedder == "dlib_resnet":
    # pylint: disable=g-import-not-at-top
    from mlfun_jax.faces import dlib_embedder
    from mlfun_jax.faces import dlib_resnet
    # pylint: enable=g-import-not-at-top
    return (dlib_embedder.DlibEmbedder(), dlib_resnet.pretrained_params(),
            load_dataset(config, orl_frame=True), dlib_resnet.DLIB_TOLERANCE)
  return (embedding.Embedder(model, mean, std, config.test_time_augmentation,
                             texture.Texture.from_config(config)),
          params, dataset, config.tolerance)


def _on_end(model, dataset, people, config, mean, std, state, workdir: str) -> None:
  embedder, params, measured, tolerance = report_embedder(config, model, mean, std, state.params,
                                                          dataset)
  results = face_measures.measure_unseen(embedder, params, measured, config.threshold_impostors,
                                         tolerance, config.tolerance_keep)
  test = dataset.splits["test"]
  report = {"validation": results["validation"], "test": results["test"], "people": people,
            "split_seed": config.split_seed, "step": int(state.step),
            "embedder": config.embedder}
  files.write_json(os.path.join(workdir, "report.json"), report, indent=1)
  face_pictures.embedding_scatter(results["embeddings"]["test"], test.labels, dataset.people,
                                  os.path.join(workdir, "test_embeddings.png"))
  face_pictures.hog_picture(test.images[0, :, :, 0], os.path.join(workdir, "hog.png"))
  photo_training.train_photo_tools(config, workdir)
  t = results["test"]
  logging.info("unseen test people (%d): recognize names %.4f of their faces (one enrolled image "
               "each, tolerance %.3f; strangers answered unknown_person %.4f); identification "
               "top-1: nearest neighbour %.4f, linear %.4f (5 enrolled: %.4f); verification "
               "accuracy %.4f (balanced %.4f) at %.3f, AUC %.4f, TAR@1%%FAR %.4f", t["people"],
               t["recognize_top1"], t["tolerance"], t["strangers_unknown"],
               t["nearest_neighbour_top1"], t["linear_top1"], t["linear_top1_5_enrolled"],
               t["accuracy"], t["balanced_accuracy"], t["threshold"], t["auc"],
               t["tar_at_far_1pct"])


def load_dataset(config: ml_collections.ConfigDict,
                 orl_frame: bool = False) -> face_data.FaceDataset:
  """The run's people split by config.split_seed, at the network's input (orl_frame: whole ORL
  frames, uint8 [112, 92, 1], other sizes scaled and centre-cropped as `load_face` does)."""
  shape = None if config.image_size is None else (*tuple(config.image_size), 1)
  if orl_frame:
    shape = (*face_box.ORL_SHAPE, 1)
  if config.data_dir is None:
    raise UserError("config field data_dir is not set (a folder of <person>/<image> files)")
  return face_data.load_faces(config.data_dir, sizes=tuple(config.people),
                              seed=config.split_seed, image_shape=shape,
                              box=None if orl_frame else face_data.input_box(config))


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The face-embedding Task for `train.run`."""
  check_config(config)
  check_photo_config(config)
  dataset = load_dataset(config)
  batch_size = config.people_per_batch * config.images_per_person
  if config.batch_size != batch_size:
    raise UserError(f"config field batch_size={config.batch_size} must equal people_per_batch x "
                    f"images_per_person = {batch_size}")
  layout = train.batch_layout(batch_size)
  model = create_model(config)
  train_split = face_data.class_labels(dataset.splits["train"])  # Labels 0..people[0]-1.
  validation = dataset.splits["validation"]
  validation_people = len(np.unique(validation.labels))
  if config.tolerance is None and validation_people < 2:
    raise UserError(f"config field tolerance=None is picked on the validation people: config "
                    f"field people={tuple(config.people)} needs >= 2 of them")
  if 0 < len(validation) < 2:
    raise UserError("config field people: the validation split needs >= 1 person with >= 2 "
                    "images (it picks the verification threshold), or none")
  num_steps = train.num_train_steps(config, len(train_split))
  (mean,), (std,) = image_stats.channel_stats(train_split.images)
  bank = None
  if config.augment.background > 0:
    bank = backgrounds.background_bank(dataset.image_shape[:2],
                                       jax.random.key(config.seed + 17))
  people = {s: dataset.people_of(s) for s in face_data.SPLITS}
  # Evaluations embed the validation faces, then the training faces when they are impostors.
  evaluated = validation.images
  if config.threshold_impostors == "validation+train":
    evaluated = np.concatenate([validation.images, train_split.images])
  return train.Task(
      init=lambda rng: create_state(model, config, dataset.image_shape, num_steps, rng),
      train_step=make_train_step(model, config, mean, std, bank),
      eval_step=make_eval_step(model, len(evaluated), mean, std, config.test_time_augmentation,
                               texture.Texture.from_config(config)),
      summarize_eval=make_summarize_eval(validation.labels, config.tolerance_keep),
      train_batches=lambda start: face_data.triplet_batches(
          train_split, people_per_batch=config.people_per_batch,
          images_per_person=config.images_per_person, seed=config.seed, start_step=start,
          process_index=layout["process_index"], process_count=layout["process_count"],
          local_device_count=layout["local_device_count"]),
      # Without validation people (all non-test people trained on) nothing is evaluated.
      eval_batches=(lambda: indexed_eval_batches(evaluated, **layout)) if len(validation) else None,
      num_steps=num_steps,
      examples_per_step=batch_size,
      meta={"task": "faces", "image_shape": list(dataset.image_shape), "input_mean": mean,
            "input_std": std, "people": people, "validation": {}},
      meta_from_eval=lambda m: {"validation": {k: m[k] for k in ("threshold", "tolerance", "auc",
                                                                 "accuracy")}},
      on_end=lambda state, workdir: _on_end(model, dataset, people, config, mean, std, state,
                                            workdir),
      fields_added_later=faces_config.FIELDS_ADDED_LATER)

