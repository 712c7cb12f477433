"""Time jaxsnn's EventProp Yin-Yang training on the CPU (peer benchmark worker).

This script runs the configuration of jaxsnn's example
``src/pyjaxsnn/jaxsnn/examples/event/yinyang_layered_event_prop.py``
(default arguments) for ``--epochs N`` epochs, building it from jaxsnn's
public building blocks, and prints one JSON line with timings and accuracy
to stdout. All logging goes to stderr.

Configuration (the example's defaults; jaxsnn expresses times in seconds):

* network 5 -> 100 -> 3 (input ``Source(5)``, hidden LIF 100, output LIF 3);
  every input neuron fires 5 identical spikes (``duplication=5``), i.e. 25
  input events per sample, which is why the first weights are scaled by 1/5
* LIF: tau_mem = 12e-6 s, tau_syn = 6e-6 s, v_th = 1, v_leak = 0,
  v_reset = -1000 (at most one spike per neuron), t_max = 4 * tau_syn
* event buffers: 125 steps for the hidden layer, 103 for the output layer
* inputs: (x, y, 1-x, 1-y, bias=0) times t_late = 12e-6 s;
  targets: 4.8e-6 s for the correct class, 7.2e-6 s for the others
* weights: N(0.6, 0.32) input->hidden, N(0.5, 0.8) hidden->output
* loss: jaxsnn.event.loss.mse_loss on the first output spike times
  (normalised by tau_mem); accuracy = argmin of the first spike times
* optimiser: optax chain(scale(1/tau_syn), clip(0.01), adam(lr)), lr 5e-3
  with exponential decay 0.99 per epoch; batch 64; 4992 training samples
  (78 batches) and 2944 test samples per epoch; float32; EventProp
  gradients (``Topology(backprop_method="eventprop")``), seed 0
* one epoch = jaxsnn.event.training.epoch (shuffled training scan over all
  batches + a pass over the whole test set), exactly as the example does.

Set-up that was used (Python 3.11, CPU only)::

    mkdir -p $HOME/.cache/eventgrad-peers/jaxsnn/src
    cd $HOME/.cache/eventgrad-peers/jaxsnn/src
    git --git-dir=/work/.mirror/electronicvisions+jaxsnn/repo --work-tree=. \\
        checkout HEAD -- .
    git --git-dir=/work/.mirror/electronicvisions+jaxsnn/repo rev-parse HEAD \\
        > JAXSNN_COMMIT
    cd $HOME/.cache/eventgrad-peers/jaxsnn
    python3 -m venv venv
    venv/bin/pip install --upgrade pip
    venv/bin/pip install jax jaxlib          # gave jax/jaxlib 0.10.2
    SETUPTOOLS_SCM_PRETEND_VERSION=0.0.0 venv/bin/pip install ./src

Run::

    $HOME/.cache/eventgrad-peers/jaxsnn/venv/bin/python jaxsnn_worker.py \\
        --epochs 5 --threads 1

``--time-unit ms`` multiplies all times (tau, t_late, targets, t_max) by
1000, i.e. tau_mem 12 ms / tau_syn 6 ms; this is not the example's default
and changes the effective step size, since the optimiser chain scales the
gradients by 1/tau_syn before clipping them to 0.01.

``--threads 1`` pins the process to one CPU and disables XLA's multi-threaded
Eigen; ``--threads 2`` pins it to two CPUs. Both are set before jax is
imported.
"""
import time

T_START = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

DEFAULT_SRC = os.path.expanduser("~/.cache/eventgrad-peers/jaxsnn/src")
DEFAULT_MIRROR = "/work/.mirror/electronicvisions+jaxsnn/repo"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, choices=(1, 2))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument(
        "--time-unit", choices=("us", "ms"), default="us",
        help="us: the example's 12e-6/6e-6 s constants; ms: every time "
             "constant, input/target time and t_max multiplied by 1000")
    return p.parse_args()


def configure_threads(threads):
    """Restrict CPU usage; must happen before jax is imported."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(allowed[:threads]))
    except (AttributeError, OSError):
        pass
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            flags = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
        os.environ["XLA_FLAGS"] = flags


def find_commit():
    src = os.environ.get("JAXSNN_SRC", DEFAULT_SRC)
    stamp = os.path.join(src, "JAXSNN_COMMIT")
    if os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as fh:
            text = fh.read().strip()
        if text:
            return text
    mirror = os.environ.get("JAXSNN_MIRROR", DEFAULT_MIRROR)
    try:
        out = subprocess.run(
            ["git", "--git-dir", mirror, "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def log(msg):
    print(f"[jaxsnn_worker {time.time() - T_START:8.2f}s] {msg}",
          file=sys.stderr, flush=True)


def main():
    args = parse_args()
    configure_threads(args.threads)

    import jax
    import jaxsnn  # noqa: F401  (sets up jaxsnn's logger on stderr)
    import optax
    from jaxsnn.base.dataset import yinyang_dataset
    from jaxsnn.event.encode import encode, spatio_temporal_encode, target_temporal_encode
    from jaxsnn.event.loss import mse_loss
    from jaxsnn.event.modules import LIF, LIFParameters, Linear, Source
    from jaxsnn.event.topology import Topology
    from jaxsnn.event.training import epoch, update
    from jaxsnn.event.types import OptState
    from jaxsnn.examples.event.utils import loss_wrapper, test_step

    t_imported = time.time()
    log(f"jax {jax.__version__}, devices {jax.devices()}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
        f"affinity={sorted(os.sched_getaffinity(0))}")

    # ---- configuration (values of the jaxsnn example's argument defaults)
    scale = 1e-3 if args.time_unit == "ms" else 1e-6
    tau_mem, tau_syn = 12.0 * scale, 6.0 * scale
    t_late = 2.0 * tau_syn
    t_correct, t_wrong = 0.8 * tau_syn, 1.2 * tau_syn
    batch = 64
    n_train_batches = 4992 // batch
    n_test_batches = 2944 // batch
    n_train, n_test = n_train_batches * batch, n_test_batches * batch
    n_in, n_out, dup = 5, 3, 5
    lr, lr_decay = 5e-3, 0.99

    neuron = LIFParameters(
        v_reset=-1000.0, v_th=1.0, tau_syn=tau_syn, tau_mem=tau_mem)

    key = jax.random.PRNGKey(args.seed)
    k_param, k_train, k_test = jax.random.split(key, 3)

    def make_split(k, size):
        xy = yinyang_dataset(k, size, mirror=True, bias_spike=0.0)
        enc_in = jax.jit(jax.vmap(lambda s: spatio_temporal_encode(
            s, t_late=t_late, duplication=dup, duplicate_neurons=False)))
        enc_out = jax.jit(jax.vmap(lambda c: target_temporal_encode(
            c, correct_target_time=t_correct, wrong_target_time=t_wrong,
            n_classes=n_out)))
        spikes, targets = encode(xy, enc_in, enc_out)
        return {"inp": spikes}, targets

    train_data = make_split(k_train, n_train)
    test_data = make_split(k_test, n_test)

    net = Topology(t_max=4.0 * tau_syn, backprop_method="eventprop")
    net.add({
        "inp": Source(n_in),
        "syn1": Linear(mean=3.0 / dup, std=1.6 / dup, min_delay=0.0),
        "lif1": LIF(args.hidden, args.hidden + n_in * dup, neuron),
        "syn2": Linear(mean=0.5, std=0.8, min_delay=0.0),
        "lif2": LIF(n_out, args.hidden + n_out, neuron),
    })
    net.connect([("inp", "syn1"), ("syn1", "lif1"),
                 ("lif1", "syn2"), ("syn2", "lif2")])
    init_fn, apply_fn = net.done()
    weights = init_fn(k_param)

    opt = optax.chain(
        optax.scale(1.0 / tau_syn),
        optax.clip(0.01),
        optax.adam(optax.exponential_decay(lr, n_train_batches, lr_decay)))
    state = OptState(opt.init(weights), weights, key)

    loss_fn = lambda w, b: loss_wrapper(  # noqa: E731
        apply_fn, mse_loss, neuron.tau_mem, "lif2", n_out, w, b)
    step_fn = jax.jit(lambda s, b: update(opt, loss_fn, s, b))
    eval_fn = lambda w, d: test_step(loss_fn, w, d)  # noqa: E731

    t_setup_done = time.time()
    log(f"setup (data + topology) {t_setup_done - t_imported:.2f}s")

    durations, accuracies = [], []
    t_first_epoch_done = None
    for i in range(args.epochs):
        t0 = time.time()
        state, (test_result, _, _) = epoch(
            step_fn, eval_fn, train_data, test_data, batch, batch, state,
            i)
        jax.block_until_ready((state, test_result))
        dt = time.time() - t0
        acc = float(test_result[1])
        durations.append(dt)
        accuracies.append(acc)
        if t_first_epoch_done is None:
            t_first_epoch_done = time.time()
        log(f"epoch {i}: {dt:.2f}s, test accuracy {acc:.4f}")

    result = {
        "impl": "jaxsnn",
        "jax_version": jax.__version__,
        "jaxsnn_commit": find_commit(),
        "t_start": T_START,
        "t_first_epoch_done": t_first_epoch_done,
        "compile_seconds": durations[0] if durations else None,
        "epoch_seconds": durations[1:],
        "train_samples_per_epoch": n_train,
        "test_samples_per_epoch": n_test,
        "final_test_accuracy": accuracies[-1] if accuracies else None,
        "test_accuracy_per_epoch": accuracies,
        "n_hidden": args.hidden,
        "tau_mem_ms": tau_mem * 1e3,
        "tau_syn_ms": tau_syn * 1e3,
        "time_unit": args.time_unit,
        "batch_size": batch,
        "threads": args.threads,
        "import_seconds": t_imported - T_START,
        "setup_seconds": t_setup_done - t_imported,
        "backprop": "eventprop",
        "dtype": "float32",
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
