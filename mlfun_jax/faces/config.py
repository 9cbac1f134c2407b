"""Config defaults of the faces family (face embeddings trained with CosFace and/or a triplet loss).

The experiment config file experiments/configs/faces_orl.py starts from `defaults()` and sets only
what differs (the data folder).
"""

import ml_collections
from ml_collections import config_dict

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc

# Fields of defaults() that configs saved by older runs lack, with the value those runs had: the
# loss was the triplet loss with semi-hard mining (the CosFace block came with `loss` and was
# unused by a triplet run), random erasing was absent (0: off), faces were embedded without
# test-time augmentation and the threshold was picked on the validation people's pairs alone.
FIELDS_ADDED_LATER = {
    **core_config.FIELDS_ADDED_LATER,
    "loss": "triplet",
    "triplet.mining": "semi_hard",
    "cosface": {"scale": 30.0, "margin": 0.35, "weight": 1.0},
    "augment.erase": 0.0,
    "test_time_augmentation": False,
    "threshold_impostors": "validation",
    "tolerance": None,
    "face_crop": False,
    "face_margin": 0,
    "lbp_weight": 0.0,
    "lpq_share": 0.0,
    "mirror_descriptors": False,
    "tolerance_keep": 0.0,
    "embedder": "network",
    "augment.background": 0.0,
    "photos": {"detector": "cascade", "hog_detector": False, "locator_steps": 0,
               "negatives_data_dir": None},
}

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    "data_dir": cc.Text(optional=True),
    "image_size": cc.AnyOf((cc.Sizes(2, 2, high=cc.MAX_IMAGE_SIDE), cc.OneOf((None,))),
                           "(height, width) integers in [1, 8,192], or None"),
    "people": cc.Ints(0, 3, 3),
    "tolerance": cc.AnyOf((cc.Positive(), cc.OneOf((None,))), "a distance > 0, or None"),
    "split_seed": cc.Integer(0),
    "face_crop": cc.Boolean(),
    "face_margin": cc.Integer(0, 10),
    "lbp_weight": cc.Fraction(),
    "lpq_share": cc.Number(0, 1),
    "mirror_descriptors": cc.Boolean(),
    "tolerance_keep": cc.Number(0, 1),
    "embedder": cc.Text(("network", "dlib_resnet")),
    "people_per_batch": cc.Integer(2),
    "images_per_person": cc.Integer(2),
    "loss": cc.Text(("triplet", "cosface", "triplet+cosface")),
    "triplet.margin": cc.Positive(),
    "triplet.squared": cc.Boolean(),
    "triplet.mining": cc.Text(("semi_hard", "batch_hard")),
    "cosface.scale": cc.Positive(),
    "cosface.margin": cc.Number(0, 1),
    "cosface.weight": cc.NonNegative(),
    "augment.shift": cc.Integer(0),
    "augment.flip": cc.Boolean(),
    "augment.rotate_degrees": cc.Number(0, 180),
    "augment.brightness": cc.Number(0, 1),
    "augment.contrast": cc.Fraction(),
    "augment.erase": cc.Number(0, 1),
    "augment.background": cc.Number(0, 1),
    "test_time_augmentation": cc.Boolean(),
    "threshold_impostors": cc.Text(("validation", "validation+train")),
    "photos.detector": cc.Text(("hog", "cascade")),
    "photos.hog_detector": cc.Boolean(),
    "photos.locator_steps": cc.Integer(0),
    "photos.negatives_data_dir": cc.Text(optional=True),
    "model.conv_features": cc.Sizes(1),
    "model.convs_per_block": cc.Integer(1),
    "model.dense_features": cc.Ints(1),
    "model.embedding_size": cc.Integer(1, cc.MAX_WIDTH),
    "model.dropout_rate": cc.Fraction(),
}


def defaults() -> ml_collections.ConfigDict:
  """Every field the faces family reads: CosFace on the (64, 128, 256) network, ORL-sized faces."""
  config = core_config.loop_defaults("faces")
  # The face folder root/<person>/<image> (None: an error naming the field).
  config.data_dir = config_dict.placeholder(str)
  config.image_size = (48, 48)  # [H, W]; None keeps the files' size (all must match).
  # The network sees each face frame's face box only (forehead to chin, cheek to cheek: 72x72 of
  # the 92x112 ORL frame), scaled to image_size; False: the whole frame. Within an ORL person the
  # hair, clothes and background repeat, and a network given them leans on them: one trained on
  # whole frames put a face pasted at its own size on grey 1.36 away from its own image (0.31
  # between two images of the person), so faces found in photos went unnamed.
  config.face_crop = True
  # ORL pixels added to every side of the face box (0..10): 10 gives the 92x92 square from the top
  # of the hair to below the chin. Hair and head outline name people far better than the face box
  # alone (validation people, docs/faces.md); augment.background keeps the wall out of it.
  config.face_margin = 10
  # Train, validation and test people (disjoint). The validation people pick recognize's tolerance
  # and the verification threshold; 10 test people, as many as a recognize check names at once.
  config.people = (16, 4, 10)
  config.split_seed = 0  # Which people land in which split.

  # Each global batch: P people x K images (the batch must divide by the devices).
  people_per_batch = config_dict.FieldReference(8)
  images_per_person = config_dict.FieldReference(4)
  config.people_per_batch = people_per_batch  # P.
  config.images_per_person = images_per_person  # K.
  config.batch_size = people_per_batch * images_per_person  # Follows P and K when they are set.

  # "triplet", "cosface" (softmax over the training people, additive cosine margin) or
  # "triplet+cosface" (triplet + cosface.weight x CosFace). CosFace beat the semi-hard triplet loss
  # on unseen people over split seeds 0-2 (README: verification 96.5% vs 94.8%).
  config.loss = "cosface"

  config.triplet = ml_collections.ConfigDict()
  config.triplet.margin = 0.6  # 0.2 (FaceNet) left no active triplets after ~600 steps here.
  config.triplet.squared = True  # Squared Euclidean distances in the loss, as FaceNet.
  config.triplet.mining = "semi_hard"  # Or "batch_hard": each anchor's closest negative.

  config.cosface = ml_collections.ConfigDict()
  config.cosface.scale = 30.0  # s: logits are s * cosines.
  config.cosface.margin = 0.35  # m: subtracted from the own class's cosine.
  config.cosface.weight = 1.0  # Of the CosFace term in "triplet+cosface".

  config.augment = ml_collections.ConfigDict()
  # Chosen on the validation people of (16, 4, 10) runs, split seeds 0 and 1 (docs/faces.md):
  # stronger augmentation, erasing and dropout with 1,000 steps named unseen people better than
  # the earlier 2 px / 8 degrees / no erasing / no dropout / 1,500 steps.
  config.augment.shift = 4  # Random shifts of up to this many pixels.
  config.augment.flip = True  # Random mirror images.
  config.augment.rotate_degrees = 12.0  # Random rotations of up to this many degrees.
  config.augment.brightness = 0.1  # Up to +-10% of the range.
  config.augment.contrast = 0.2  # Contrast factor in [0.8, 1.2].
  # Chance of random erasing: one rectangle (2-20% of the face) filled with noise (0: off).
  config.augment.erase = 0.5
  # Chance that a face gets a random photo square around its head (`backgrounds`), so the network
  # reads the head, not the wall ORL shows behind every person.
  config.augment.background = 0.5

  # Embed every measured or recognised face as the normalised mean embedding of 6 views: itself,
  # its mirror image and 2-pixel shifts up, down, left and right (training is unchanged).
  config.test_time_augmentation = True
  # w in [0, 1): join each face's texture descriptor (`faces.texture`: LBP codes, 8 points at
  # radius 2, and LPQ codes, 7x7 windows, histograms over 4x4 cells; nothing trained) to the
  # network's embedding, squared distances becoming (1 - w) x the network's + w x the
  # descriptor's. Trained on 16 people, the network knows new people less well than it knows its
  # own; the descriptor knows everyone alike.
  config.lbp_weight = 0.9
  # a in [0, 1]: the descriptor's squared distances are (1 - a) x LBP's + a x LPQ's (0: LBP alone).
  config.lpq_share = 0.5
  # Each histogram describes the face and its mirror image together (turned left or right alike).
  config.mirror_descriptors = True

  # Different-person pairs the verification threshold is picked on: 'validation' (pairs of the
  # validation people only) or 'validation+train' (also every validation face against every
  # training face; the same-person pairs are always the validation people's).
  config.threshold_impostors = "validation+train"

  # recognize's default tolerance (Euclidean distance); None: picked on this run's validation
  # people at each evaluation (measures.pick_tolerance: the best mean of known faces named right
  # and strangers answered unknown_person; needs >= 2 validation people) and saved with it.
  config.tolerance = config_dict.placeholder(float)
  # How that tolerance is picked: a share q in (0, 1] keeps q of the validation known faces that
  # the nearest enrolled face names right (recognize turns away at most 1 - q of them, and names
  # more strangers: each run reports the share of the test strangers it still answers
  # unknown_person); 0 balances known faces named right against strangers turned away. 0.98:
  # recognize is asked to name the people it knows (docs/faces.md).
  config.tolerance_keep = 0.98
  # What recognize (and the run's report of its test people) embeds faces with: "network" (this
  # run's network, at the tolerance above) or "dlib_resnet" (dlib's pretrained face ResNet,
  # trained on ~7,500 other people, on each face's ORL frame aligned by dlib's 5 landmarks; dlib's
  # tolerance 0.6; chosen on validation people, docs/faces.md). The run trains its network either
  # way; `mlfun-recognize --embedder` picks the other.
  config.embedder = "dlib_resnet"

  # Faces in photos (mlfun-recognize): trained at the end of the run on the training people only.
  config.photos = ml_collections.ConfigDict()
  config.photos.detector = "cascade"  # recognize's default detector: "hog" or "cascade".
  config.photos.hog_detector = True  # Train the series' HOG + linear detector (face_detector_hog.npz).
  config.photos.locator_steps = 1500  # Steps of the eye locator that aligns faces (0: none).
  # The data folder holding cifar10/train.zip, whose photos join the detector's negatives (None:
  # the package photos alone).
  config.photos.negatives_data_dir = config_dict.placeholder(str)

  config.model = ml_collections.ConfigDict()
  config.model.conv_features = (64, 128, 256)  # Channels of each conv block (2x2 max-pool each).
  config.model.convs_per_block = 1  # 3x3 convolutions per block.
  config.model.dense_features = ()  # Hidden dense layers after the convolutions.
  config.model.embedding_size = 128  # Length of the unit-norm embedding.
  config.model.dropout_rate = 0.2  # Dropout before every dense layer.

  config.optimizer.schedule = "warmup_cosine"  # AdamW 1e-3 with warm-up and cosine decay.
  config.optimizer.warmup_steps = 50  # Linear warm-up steps.
  config.optimizer.weight_decay = 1e-4  # AdamW's decoupled weight decay.

  config.num_steps = 1000  # Run length (num_epochs is unused when set).
  config.eval_every = 200  # Steps between validation measures (and threshold picks).
  config.keep_checkpoints = 2  # Newest checkpoints kept.
  return config
