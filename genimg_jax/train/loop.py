"""The host loop: `train_and_evaluate(config, workdir)`.

Data flows one way: config → data on the device → state (fresh or restored) → compiled K-step
dispatches → outputs (metrics, PNGs, checkpoints). Metrics of a log interval are fetched from
the device once, after the next dispatch has been queued, so the host never stalls the device.
"""

import os
import signal
import time

import jax
import numpy as np

from genimg_jax import checkpoint as ckpt
from genimg_jax import outputs, sharding
from genimg_jax.data import feeding, load_split
from genimg_jax.errors import Interrupted, NonFiniteError, UserError
from genimg_jax.evaluation.training import TrainingEvaluator
from genimg_jax.train import (compiled, distributed, memory_bound, run_config, runs, selection,
                              signals, sweep)
from genimg_jax.train.interval_metrics import IntervalMetrics, NonFinite
from genimg_jax.train.families import build_family


def _boundary_steps(config, step: int) -> int:
  """Steps from `step` to the next log / sample / checkpoint / eval boundary or the end, capped
  at K."""
  stop = config.num_steps
  for every in (config.log_every, config.sample_every, config.checkpoint_every,
                config.eval_every, config.validation_every):
    if every:
      stop = min(stop, (step // every + 1) * every)
  return min(config.steps_per_dispatch, stop - step)


def _ensure_workdir(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise UserError(f"work directory {workdir} is not writable ({e.strerror}): "
                    f"pass a writable --workdir") from None


class Run:
  """One training run's pieces, built once: data, family, mesh, compiled steps, writers."""

  def __init__(self, config, workdir: str):
    self.config = config
    self.workdir = workdir
    self.streamed = not config.data_on_device
    if self.streamed:  # Records are read as batches need them (data/streaming.py).
      from genimg_jax.data import streaming  # pylint: disable=import-outside-toplevel  # Grain.

      self.train_data = streaming.open_split(config.dataset, "train", config.data_dir or None,
                                             config.image_size)
    else:
      self.train_data = load_split(config, "train")  # Binarised as config.binarize says.
    self.image_shape = self.train_data.image_shape
    self.family = build_family(config, self.image_shape, self.train_data.num_classes)
    self.mesh = sharding.make_mesh()
    num_examples = self.train_data.num_examples
    self.num_shards = distributed.check_sizes(config, self.mesh.devices.size, num_examples)
    self.num_ordered = num_examples // self.num_shards * self.num_shards
    self.layout = compiled.layout_for(self.family, config, self.mesh, self.num_ordered,
                                      self.num_shards)
    per_step = self.layout.batch_size  # Every batch of a step (n_critic of them for WGAN-GP).
    if self.layout.shard_size < per_step // self.num_shards:
      raise UserError(f"data set {config.dataset} has {num_examples} training "
                      f"images, fewer than the {per_step} one step uses: lower the batch size")
    # Before anything per run: R runs that cannot fit are one line, not minutes of set-up.
    memory_bound.check_runs_fit(config, self.family, self.mesh, self.layout, self.train_data)
    self.replicated = sharding.replicated(self.mesh)
    self.multi_step = compiled.build(self.family, config, self.mesh, self.layout)
    self.saved_position = None  # The restored checkpoint's data stream position, if any.
    self.plan = sweep.plan(config)  # The runs (one without a runs axis).
    self.stacked = sweep.uses_runs_axis(config)  # The state is a runs.RunsState.
    keys = [runs.run_keys(seed) for seed in self.plan.seeds]
    self.run_key, self.eval_keys = keys[0][0], [k[2] for k in keys]
    self.grid_latents = []  # Per run, on the host (every process).
    for _, grid_key, _ in keys:
      latents, self.grid_columns = self.family.grid_latents(grid_key, config.num_grid_samples)
      self.grid_latents.append(jax.tree_util.tree_map(np.asarray, latents))
    self.generate = jax.jit(self.family.generate)
    self.checkpointer = ckpt.Checkpointer(workdir, config.keep_checkpoints)
    self._test_data = None
    self.all_finite = jax.jit(runs.all_finite)
    if self.family.reconstructs:
      self.reconstruct = jax.jit(self.family.reconstruct)
      self.test_data()  # VAEs reconstruct and evaluate test images: fail now, not mid-run.
    self.evaluator = (TrainingEvaluator(config, self.family, self.eval_keys[0], self.test_data)
                      if config.eval_every else None)
    self.validation = None  # The validation split, when the best-validation model is kept.
    if self.family.selects_on_validation:
      self.validation = load_split(config, "validation")  # No such split: one line, now.
      keep = ((lambda s, score: s.replace(runs=selection.keep_best(s.runs, score)))
              if self.stacked else selection.keep_best)
      self.keep_best = jax.jit(keep)

  def each_run(self, state):
    """[(run index or None without a runs axis, its family state, its evaluation key)]."""
    if not self.stacked:
      return [(None, state, self.eval_keys[0])]
    return [(r, runs.select(state, r), self.eval_keys[r]) for r in range(self.plan.size)]

  def init_state(self):
    """Fresh state, or the latest checkpoint's; built by eval_shape then one jit (big_vision)."""
    init = lambda key: self.family.init_state(key, self.num_ordered, self.image_shape)
    make = ((lambda: runs.init_state(init, self.plan)) if self.stacked
            else (lambda: init(self.run_key)))
    abstract = jax.eval_shape(make)
    shardings = (runs.state_shardings(abstract, self.mesh, sharding.DATA_AXIS)
                 if self.multi_step.spread else self.replicated)
    latest = self.checkpointer.latest_step()
    if latest is None:
      return jax.jit(make, out_shardings=shardings)()
    run_config.check_resumable(self.config, self.checkpointer.restore_run_info(latest), latest)
    if self.streamed:
      position = feeding.Position()
      if self.checkpointer.restore_data_position(latest, position):
        self.saved_position = position.state
    return self.checkpointer.restore(latest, ckpt.abstract_like(abstract, shardings))

  def test_data(self):
    """The test split (loaded once, on first use)."""
    if self._test_data is None:
      self._test_data = load_split(self.config, "test")
    return self._test_data

  def feed(self, state):
    """What the dispatches from `state.step` on train on: the placed split, or a Grain stream
    of the same batches prefetched to the devices (data/feeding.py)."""
    if not self.streamed:
      return feeding.resident_feed(self.train_data, self.mesh, self.num_shards)
    config = self.config
    return feeding.streamed_feed(
        self.train_data, np.asarray(state.rng.addressable_data(0)), self.layout, self.mesh,
        int(state.step), self.saved_position, lambda s: _boundary_steps(config, s),
        config.num_steps, config.data_workers, config.steps_per_dispatch, self.multi_step.place)

  def save(self, state, score: float | None = None, data_position=None) -> None:
    """Checkpoints `state` (with its evaluation score, if any, and the data stream's position),
    unless any of its numbers is NaN/Inf (then NonFiniteError)."""
    step = int(state.step)
    if not bool(self.all_finite(state)):
      _raise_nonfinite(NonFinite(step, "the parameters or optimiser state", float("nan")), self)
    self.checkpointer.save(step, state, run_config.run_info(
        self.config, self.image_shape, self.num_ordered, self.train_data.num_classes),
        score, data_position)

  def write_samples(self, state, step: int, writer: outputs.RunWriter) -> None:
    """Each run's sample grid (and reconstructions) of its fixed latents: samples_<step>.png,
    in run_<r>/ under a runs axis."""
    for r, single, _ in self.each_run(state):
      latents = self.grid_latents[r or 0]
      images = np.asarray(self.generate(single, latents))  # Every process: collective.
      if self.family.reconstructs:
        originals = self.test_data().images[: self.config.num_recon]
        labels = self.test_data().labels[: self.config.num_recon]
        recon = np.asarray(self.reconstruct(single, originals, labels))
      if not distributed.is_writer():
        continue
      folder = outputs.run_folder(self.workdir, r)
      outputs.save_image_grid(images, os.path.join(folder, f"samples_{step}.png"),
                              self.grid_columns)
      writer.write_images(step, {"samples": outputs.image_grid(images, self.grid_columns)}, r)
      if self.family.reconstructs:
        pairs = np.concatenate([originals / 255.0, recon], axis=2)  # Original | reconstruction.
        outputs.save_image_grid(pairs, os.path.join(folder, f"reconstructions_{step}.png"))
        writer.write_images(step, {"reconstructions": outputs.image_grid(pairs)}, r)

  def run_tags(self) -> list[dict] | None:
    """Each run's tags in metrics.jsonl (None without a runs axis)."""
    if not self.stacked:
      return None
    return [{"run": r, "seed": self.plan.seeds[r], **self.plan.points[r]}
            for r in range(self.plan.size)]


def _raise_nonfinite(bad, run: Run) -> None:
  last = run.checkpointer.latest_step()
  kept = (f"the last good checkpoint, step {last}, is kept in {run.checkpointer.directory}"
          if last is not None else "no checkpoint was saved")
  raise NonFiniteError(f"{bad.name} became {bad.value} at step {bad.step}: training stopped "
                       f"and {kept}; lower the learning rate or check the data")


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming from its latest checkpoint); returns final metrics.

  Raises NonFiniteError on a NaN/Inf metric (without saving the poisoned state) and
  Interrupted after SIGINT/SIGTERM (having saved a checkpoint at the step reached).
  """
  run_config.validate(config)
  distributed.initialize(config)
  with distributed.workdir_held(workdir):  # A second run stops here, touching nothing.
    if distributed.is_writer():
      _ensure_workdir(workdir)
    with signals.StopRequest() as stop:  # From here on, a signal stops after the next dispatch.
      return _train(config, workdir, stop)


def _train(config, workdir: str, stop: signals.StopRequest) -> dict:
  run = Run(config, workdir)
  state = run.init_state()  # Refuses a checkpoint of another config before anything is written.
  writer = (outputs.RunWriter(workdir, runs=run.run_tags()) if distributed.is_writer()
            else outputs.NullWriter())
  if distributed.is_writer():
    outputs.write_config(workdir, config.to_dict())
  step = int(state.step)
  feed = run.feed(state)
  writer.truncate_after(step)
  progress = outputs.Progress(config.num_steps, initial_step=step,
                              stream=None if distributed.is_writer() else outputs.NullWriter())
  metrics, final, last_report = IntervalMetrics(), {}, (step, time.perf_counter())
  last_eval = {}
  monitor = (runs.Monitor(run.plan, *jax.device_get((state.alive, state.frozen_at)))
             if run.stacked else None)

  def report():
    nonlocal final, last_report
    end_step, scalars, bad = metrics.report()
    if bad is not None:
      _raise_nonfinite(bad, run)
    now = time.perf_counter()
    steps_per_sec = (end_step - last_report[0]) / max(now - last_report[1], 1e-9)
    if monitor is not None:
      for line in monitor.update(last_report[0], metrics.fetched.pop("alive")):
        print(line, flush=True)
      if monitor.all_frozen:
        _raise_nonfinite(NonFinite(end_step, "every run", float("nan")), run)
      scalars.pop("alive")
      for r in range(run.plan.size):
        writer.write_scalars(end_step, {**{k: v[r] for k, v in scalars.items()},
                                        "steps_per_sec": steps_per_sec}, r)
      scalars = per_run_mean(scalars)
    else:
      writer.write_scalars(end_step, {**scalars, "steps_per_sec": steps_per_sec})
    last_report, final = (end_step, now), scalars
    progress.update(end_step, scalars, steps_per_sec)

  def save(score=None):
    bad = metrics.check_unreported()
    if bad is not None:
      _raise_nonfinite(bad, run)
    if run.stacked and not bool(np.any(jax.device_get(state.alive))):
      _raise_nonfinite(NonFinite(int(state.step), "every run", float("nan")), run)
    run.save(state, score, feed.position)

  try:
    while step < config.num_steps:
      num = _boundary_steps(config, step)
      state, step_metrics = run.multi_step(state, feed.take(step, num), num)
      metrics.add(step, step_metrics)
      step += num
      if metrics.has_closed:
        report()  # The previous interval, now that this dispatch is queued.
      if step % config.log_every == 0 or step == config.num_steps:
        metrics.close(step)
      if step % config.sample_every == 0 or step == config.num_steps:
        run.write_samples(state, step, writer)
      if run.validation is not None and (step % config.validation_every == 0
                                         or step == config.num_steps):
        state = validate_runs(run, state, writer, step)
      score = None
      if run.evaluator is not None and (step % config.eval_every == 0 or step == config.num_steps):
        last_eval, score = evaluate_runs(run, state, writer, step)
      if (step % config.checkpoint_every == 0 or step == config.num_steps or stop.requested
          or score is not None):  # Every evaluated state is a candidate for the best checkpoint.
        save(score)
      if stop.requested and step < config.num_steps:
        raise Interrupted(f"{signal.Signals(stop.signum).name} at step {step}: checkpoint saved "
                          f"in {run.checkpointer.directory}; run the same command to resume",
                          stop.signum)
    if metrics.has_closed:
      report()
    final_test = [split_metrics(run, selection.selected(single), key)  # The model scored.
                  for _, single, key in run.each_run(state)]
    if final_test[0] is not None:
      for r, test in zip(range(len(final_test)) if run.stacked else [None], final_test):
        writer.write_scalars(step, test, r)
      final.update(per_run_mean({k: [t[k] for t in final_test] for k in final_test[0]},
                                monitor))
    final.update(last_eval)
    if run.validation is not None:
      final.update(selected_models(run, state))
    if monitor is not None and monitor.frozen:
      print(f"frozen runs: {monitor.summary()}", flush=True)
  finally:
    feed.close()
    progress.close()
    writer.close()
    run.checkpointer.close()
  return final


def per_run_mean(values: dict, monitor: "runs.Monitor | None" = None) -> dict[str, float]:
  """{name: [R] per-run values} → {name: mean over the live runs} (frozen runs left out: their
  metrics are NaN, or listed in `monitor`)."""
  out = {}
  for name, per_run in values.items():
    per_run = np.asarray(per_run, np.float64)
    live = [r for r in range(per_run.shape[0]) if monitor is None or r not in monitor.frozen]
    finite = per_run[live][np.isfinite(per_run[live])]
    out[name] = float(np.mean(finite)) if finite.size else float("nan")
  return out


def evaluate_runs(run: Run, state, writer, step: int) -> tuple[dict, float]:
  """Every run's evaluation (written per run); (scalars, score) of the mean over live runs."""
  results, scores = [], []
  alive = (np.asarray(jax.device_get(state.alive)) if run.stacked else np.ones(1, bool))
  for r, single, key in run.each_run(state):
    scalars, score = run.evaluator(single, split_metrics(run, single, key), key)
    writer.write_scalars(step, scalars, r)
    results.append(scalars)
    scores.append(score if alive[r or 0] else float("nan"))
  if not run.stacked:
    return results[0], scores[0]
  mean = per_run_mean({k: [res[k] if alive[r] else float("nan") for r, res in enumerate(results)]
                       for k in results[0]})
  live = [x for x in scores if np.isfinite(x)]
  return mean, float(np.mean(live)) if live else float("nan")


def validate_runs(run: Run, state, writer, step: int):
  """Every run's validation score (written per run); each run's best copy is replaced by its
  current model where the score improved (select_model="best_validation")."""
  data, scores = run.validation, []
  for r, single, key in run.each_run(state):
    score = run.family.validation_score(single, data.images, data.labels,
                                        jax.random.fold_in(key, step), run.config.eval_batch_size)
    writer.write_scalars(step, {selection.PREFIX + "neg_elbo": score}, r)
    scores.append(score)
  return run.keep_best(state, np.asarray(scores if run.stacked else scores[0], np.float32))


def selected_models(run: Run, state) -> dict[str, float]:
  """Prints each run's selected model (its step and validation score); returns their means."""
  steps, scores = [], []
  for r, single, _ in run.each_run(state):
    best = jax.device_get(single.best)
    steps.append(int(best["step"]))
    scores.append(float(best["score"]))
    if distributed.is_writer():
      name = "" if r is None else f"run {r}: "
      print(f"{name}selected model: step {steps[-1]} (best validation −ELBO {scores[-1]:.3f})",
            flush=True)
  return {"selected_step": float(np.mean(steps)), "validation_neg_elbo_best": float(np.mean(scores))}


def split_metrics(run: Run, state, eval_key=None) -> dict[str, float] | None:
  """The family's test-split metrics (a VAE's −ELBO in nats and bits/dim), None if it has none.
  `state`: one run's family state; `eval_key`: its evaluation key (default: the first run's)."""
  if not run.family.scores_test_split:
    return None
  test = run.test_data()
  return run.family.evaluate(state, test.images, test.labels,
                             run.eval_keys[0] if eval_key is None else eval_key,
                             run.config.eval_batch_size)
