"""Keys every model shares: run length, data, logging, checkpoints. Model configs extend this."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = ""  # Config file name (configs/<model>.py); set by train.py's --model.
  config.family = ""  # Model family, picks the train step: "gan" or "vae" (set by each model).
  config.architecture = "mlp"  # Module file in genimg_jax/models/ that builds the networks.
  config.conditional = False  # Class-conditional networks (needs a data set with labels).
  config.seed = 0  # Seeds parameters, batches, noise: same seed ⇒ same run, bit for bit.
  config.num_runs = 1  # Runs with seeds seed, seed + 1, … trained in one vmapped program.
  config.sweep = ""  # "KEY=v1,v2[;KEY2=…]": runs over the product of values (× num_runs each).
  config.sweep_zip = False  # True: sweep point i takes the i-th value of every key (no product).
  # Random search (python -m genimg_jax.search): "KEY=DIST(…)[;KEY2=…]", DIST one of
  # uniform(lo,hi), log10uniform(lo,hi) (10^U(lo, hi)), choice(v1,v2,…); "" = no search.
  config.search = ""
  config.search_points = 100  # Points of the search, point 0 = this config's own values.
  config.search_seed = 0  # Seeds the draw of points 1, 2, … (numpy's default_rng).
  config.search_score = "fid_classifier"  # How each point is scored (evaluation/point_scores.py).
  config.runs_vectorize = "auto"  # Runs axis: "vmap" (batched kernels), "loop", "auto" (CPU: loop).
  config.memory_limit_gib = 0.0  # Runs axis: GiB its runs may use per device (0 = free memory).
  config.dataset = "mnist_embedded"  # "mnist_embedded" (offline default) or a TFDS set name.
  config.data_dir = ""  # TFDS data dir; "" ⇒ $TFDS_DATA_DIR, else TFDS's default.
  config.binarize = "none"  # Pixels as 0/255 with p = x/255: "none", "static" (one seeded draw
  # per split, fixed for the run) or "dynamic" (a fresh draw per batch; test split: one draw).
  config.image_size = 0  # > 0: center-crop to square and resize to this size at load; 0: as is.
  config.data_on_device = True  # Whole training split on the device; False: stream with Grain.
  config.data_workers = 2  # data_on_device=False: Grain reader threads (0: read when needed).
  config.batch_size = 64  # Global batch (split over devices).
  config.num_steps = 5_000  # Training steps (one step = the update of every network once).
  config.steps_per_dispatch = 50  # Steps compiled into one lax.scan call (fewer host round trips).
  config.log_every = 250  # Steps between metric fetches (metrics.jsonl, TensorBoard, progress).
  config.sample_every = 1_000  # Steps between PNG sample grids from fixed latents.
  config.checkpoint_every = 1_000  # Steps between Orbax checkpoints (and one at the end).
  config.keep_checkpoints = 3  # Newest checkpoints kept on disk.
  config.num_grid_samples = 64  # Images in each sample grid (8 × 8).
  config.select_model = "last"  # Model a run is scored as: "last" step, or "best_validation"
  # (VAEs: lowest validation −ELBO, checked every validation_every steps; needs a validation split).
  config.validation_every = 0  # Steps between validation checks of select_model (0 = none).
  config.eval_every = 0  # Steps between evaluations that keep the best checkpoint (0 = off).
  config.eval_num_samples = 10_000  # Generated images per evaluation (FID is stated at this count).
  config.eval_space = "classifier"  # Features of FID/KID/precision: "classifier" or "inception".
  config.eval_cache_dir = ""  # Classifier + reference features; "" ⇒ $GENIMG_CACHE_DIR or ~/.cache.
  config.eval_classifier_epochs = 8.0  # Epochs of the feature classifier (part of its cache key).
  config.inception_weights = ""  # TorchScript Inception-v3 (2015-12-05) file for eval_space inception.
  config.init = "flax"  # Parameter init: "flax" (Flax's defaults), "torch" (PyTorch's nn.Linear/
  # nn.Conv2d defaults), "he_normal" or "glorot_zero" (docs/models.md, Initialisation).
  config.compute_dtype = "float32"  # "float32" or "bfloat16" matmuls (params stay float32).
  config.parallel = "jit"  # "jit" (sharded jit, XLA's all-reduce) or "pmap" (lax.pmean).
  config.data_shards = 0  # Data shards, each epoch-shuffled on its own; 0 ⇒ one per process.
  config.distributed = False  # Call jax.distributed.initialize() (several hosts / processes).
  config.coordinator_address = ""  # host:port of process 0; "" ⇒ detect (SLURM, MPI, k8s, TPU).
  config.num_processes = 0  # Processes in the run; 0 ⇒ detect.
  config.process_id = -1  # This process's index; -1 ⇒ detect.
  return config
